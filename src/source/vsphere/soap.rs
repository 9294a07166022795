//! SOAP envelopes and a small namespace-resolved element tree for vim25 answers.
//!
//! Answers are parsed into a tree rather than into typed structs: the client reads a few
//! fields out of large, version-dependent documents, and `xsi:type` (which decides what
//! a device or fault is) has to be resolved by namespace URI, since simulators and real
//! servers bind the XML-Schema-instance namespace to different prefixes.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const SOAPENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// A managed object reference (`<x type="VirtualMachine">vm-42</x>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Moref {
    pub kind: String,
    pub value: String,
}

impl Moref {
    pub fn new(kind: &str, value: &str) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// The element `<tag type="kind">value</tag>`.
    pub fn xml(&self, tag: &str) -> String {
        format!(
            "<{tag} type=\"{}\">{}</{tag}>",
            escape(&self.kind),
            escape(&self.value)
        )
    }

    pub fn from_element(e: &Element) -> Option<Moref> {
        let kind = e.attr("", "type")?;
        Some(Moref::new(kind, e.text.trim()))
    }
}

impl std::fmt::Display for Moref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    /// (namespace URI or "", local name, value)
    pub attrs: Vec<(String, String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, l, _)| n == ns && l == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// The `xsi:type` of this element without its prefix ("VirtualDisk").
    pub fn xsi_type(&self) -> Option<&str> {
        self.attr(XSI, "type")
            .map(|t| t.rsplit(':').next().unwrap_or(t))
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of child names ("config/hardware/device").
    pub fn path(&self, path: &str) -> Option<&Element> {
        path.split('/').try_fold(self, |e, part| e.child(part))
    }

    pub fn text_of(&self, path: &str) -> Option<&str> {
        self.path(path).map(|e| e.text.trim())
    }

    pub fn moref_of(&self, path: &str) -> Option<Moref> {
        self.path(path).and_then(Moref::from_element)
    }
}

/// A document that is not the XML or SOAP shape expected; the words say where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

impl From<&str> for Malformed {
    fn from(s: &str) -> Malformed {
        Malformed(s.to_owned())
    }
}

impl From<String> for Malformed {
    fn from(s: String) -> Malformed {
        Malformed(s)
    }
}

/// Parses a document into its root element.
pub fn parse(text: &str) -> Result<Element, Malformed> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let mut el = Element {
                    ns: ns_uri(&ns),
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for a in s.attributes().with_checks(false) {
                    let a = a.map_err(|e| e.to_string())?;
                    let key = a.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, local) = reader.resolve_attribute(key);
                    let value = a.unescape_value().map_err(|e| e.to_string())?;
                    el.attrs.push((
                        ns_uri(&ans),
                        String::from_utf8_lossy(local.as_ref()).into_owned(),
                        value.into_owned(),
                    ));
                }
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return Ok(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.unescape().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => return Err("document ended early".into()),
            _ => {}
        }
    }
}

fn ns_uri(r: &ResolveResult) -> String {
    match r {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        _ => String::new(),
    }
}

pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Wraps a method call in a SOAP envelope.
pub fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"{SOAPENV}\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"{XSI}\">\
         <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

/// A SOAP fault: the fault type (from `xsi:type`, else the detail element's name) and
/// the server's message.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: String,
    pub message: String,
}

/// Splits an answer into the method's response element or its fault.
pub fn response(root: &Element) -> Result<Result<Element, Fault>, Malformed> {
    if root.name != "Envelope" || root.ns != SOAPENV {
        return Err(format!("not a SOAP envelope (<{}>)", root.name).into());
    }
    let body = root
        .children
        .iter()
        .find(|c| c.name == "Body" && c.ns == SOAPENV)
        .ok_or("SOAP envelope without a body")?;
    let first = body.children.first().ok_or("empty SOAP body")?;
    if first.name == "Fault" && first.ns == SOAPENV {
        return Ok(Err(fault(first)));
    }
    Ok(Ok(first.clone()))
}

fn fault(f: &Element) -> Fault {
    let message = f.text_of("faultstring").unwrap_or("").to_owned();
    let detail = f.child("detail").and_then(|d| d.children.first()).cloned();
    Fault {
        kind: detail.as_ref().map(fault_kind).unwrap_or_else(|| {
            f.text_of("faultcode")
                .unwrap_or("SOAP fault")
                .rsplit(':')
                .next()
                .unwrap_or("")
                .to_owned()
        }),
        message,
    }
}

/// The vim25 type of a fault element (`<InvalidLoginFault xsi:type="InvalidLogin">`).
pub fn fault_kind(e: &Element) -> String {
    e.xsi_type()
        .map(str::to_owned)
        .unwrap_or_else(|| e.name.strip_suffix("Fault").unwrap_or(&e.name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xsi_type_is_resolved_by_uri_not_prefix() {
        let doc = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
            xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><s:Body><s:Fault>
            <faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring>
            <detail><InvalidLoginFault xmlns="urn:vim25" i:type="InvalidLogin"/></detail>
            </s:Fault></s:Body></s:Envelope>"#;
        let f = response(&parse(doc).unwrap()).unwrap().unwrap_err();
        assert_eq!(f.kind, "InvalidLogin");
        assert_eq!(f.message, "Login failure");
        // A prefix named xsi bound to some other URI is not the schema-instance type.
        let doc = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
            xmlns:xsi="urn:other"><s:Body><s:Fault><faultstring>x</faultstring>
            <detail><NotAuthenticatedFault xmlns="urn:vim25" xsi:type="Bogus"/></detail>
            </s:Fault></s:Body></s:Envelope>"#;
        let f = response(&parse(doc).unwrap()).unwrap().unwrap_err();
        assert_eq!(f.kind, "NotAuthenticated");
    }

    #[test]
    fn morefs_and_paths() {
        let doc = r#"<a xmlns="urn:vim25"><b><c type="VirtualMachine">vm-1</c></b>
            <t>x &amp; y</t></a>"#;
        let root = parse(doc).unwrap();
        assert_eq!(
            root.moref_of("b/c"),
            Some(Moref::new("VirtualMachine", "vm-1"))
        );
        assert_eq!(root.text_of("t"), Some("x & y"));
        assert_eq!(
            Moref::new("A", "x<y").xml("_this"),
            "<_this type=\"A\">x&lt;y</_this>"
        );
    }
}

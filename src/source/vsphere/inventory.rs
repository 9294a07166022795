//! Which VMs the mount shows: the inventory path's object, then every VM below it with
//! one ContainerView and one property retrieval (paged by token), not a call per VM.

use std::collections::HashMap;

use super::client::Client;
use super::errors::{Result, VsError};
use super::soap::{escape, Element, Moref};

#[derive(Debug, Clone)]
pub struct VmInfo {
    pub moref: Moref,
    pub name: String,
    pub template: bool,
    pub disks: usize,
    pub tools: String,
    /// The host running the VM (runtime.host).
    pub host: Option<Moref>,
    /// config.changeTrackingEnabled: whether changed blocks are tracked.
    pub change_tracking: bool,
}

const VM_PATHS: &[&str] = &[
    "name",
    "config.template",
    "summary.config.numVirtualDisks",
    "guest.toolsRunningStatus",
    "runtime.host",
    "config.changeTrackingEnabled",
];

/// The object an inventory path names ("" is the root folder).
pub fn resolve(c: &Client, path: &str) -> Result<Moref> {
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Ok(c.sc.root_folder.clone());
    }
    let r = c.call(
        "FindByInventoryPath",
        &c.sc.search_index,
        &format!("<inventoryPath>{}</inventoryPath>", escape(path)),
    )?;
    r.moref_of("returnval").ok_or_else(|| VsError::NotFound {
        server: c.server.clone(),
        what: format!("inventory path /{path} (expected /<datacenter>/vm/<folder or VM>)"),
    })
}

fn vm_info(obj: Moref, p: &HashMap<String, Element>) -> VmInfo {
    let text = |k: &str| {
        p.get(k)
            .map(|e| e.text.trim().to_owned())
            .unwrap_or_default()
    };
    VmInfo {
        name: text("name"),
        template: text("config.template") == "true",
        disks: text("summary.config.numVirtualDisks").parse().unwrap_or(0),
        tools: text("guest.toolsRunningStatus"),
        host: p.get("runtime.host").and_then(Moref::from_element),
        change_tracking: text("config.changeTrackingEnabled") == "true",
        moref: obj,
    }
}

/// Every VM at or below `root`.
pub fn vms(c: &Client, root: &Moref) -> Result<Vec<VmInfo>> {
    if root.kind == "VirtualMachine" {
        let p = c.properties(root, VM_PATHS)?;
        return Ok(vec![vm_info(root.clone(), &p)]);
    }
    let found = in_view(c, root, "VirtualMachine", VM_PATHS)?;
    let mut out: Vec<VmInfo> = found
        .into_iter()
        .map(|o| vm_info(o.obj, &o.props))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.moref.value.cmp(&b.moref.value)));
    Ok(out)
}

/// Objects of `kind` below `root` with `paths`, through a ContainerView destroyed after.
pub fn in_view(
    c: &Client,
    root: &Moref,
    kind: &str,
    paths: &[&str],
) -> Result<Vec<super::client::ObjectContent>> {
    let r = c.call(
        "CreateContainerView",
        &c.sc.view_manager,
        &format!(
            "{}<type>{kind}</type><recursive>true</recursive>",
            root.xml("container")
        ),
    )?;
    let view = r
        .moref_of("returnval")
        .ok_or_else(|| c.protocol("CreateContainerView", "no view returned".into()))?;
    let set = format!(
        "<objectSet>{}<skip>true</skip><selectSet xsi:type=\"TraversalSpec\">\
         <name>view</name><type>ContainerView</type><path>view</path><skip>false</skip>\
         </selectSet></objectSet>",
        view.xml("obj")
    );
    let result = c.retrieve(&set, kind, paths);
    let _ = c.call("DestroyView", &view, "");
    result
}

/// Datastore moref → (datacenter inventory path, datastore name): the two query
/// parameters of a /folder URL. The path includes folders above the datacenter, which
/// `dcPath` needs for datacenters kept in folders.
pub fn datastores(c: &Client) -> Result<HashMap<String, (String, String)>> {
    let root = c.sc.root_folder.clone();
    let dcs = in_view(c, &root, "Datacenter", &["name", "datastore", "parent"])?;
    let folders: HashMap<String, (String, Option<Moref>)> =
        in_view(c, &root, "Folder", &["name", "parent"])?
            .into_iter()
            .map(|o| {
                let name = o
                    .props
                    .get("name")
                    .map(|e| e.text.clone())
                    .unwrap_or_default();
                let parent = o.props.get("parent").and_then(Moref::from_element);
                (o.obj.value, (name, parent))
            })
            .collect();
    let names: HashMap<String, String> = in_view(c, &root, "Datastore", &["name"])?
        .into_iter()
        .filter_map(|o| Some((o.obj.value.clone(), o.props.get("name")?.text.clone())))
        .collect();
    let mut out = HashMap::new();
    for dc in dcs {
        let Some(mut path) = dc.props.get("name").map(|e| e.text.clone()) else {
            continue;
        };
        let mut up = dc.props.get("parent").and_then(Moref::from_element);
        let mut depth = 0;
        while let Some(p) = up.filter(|p| p.kind == "Folder" && *p != root && depth < 64) {
            let Some((name, parent)) = folders.get(&p.value) else {
                break;
            };
            path = format!("{name}/{path}");
            up = parent.clone();
            depth += 1;
        }
        let Some(list) = dc.props.get("datastore") else {
            continue;
        };
        for m in list.children.iter().filter_map(Moref::from_element) {
            if let Some(n) = names.get(&m.value) {
                out.insert(m.value.clone(), (path.clone(), n.clone()));
            }
        }
    }
    Ok(out)
}

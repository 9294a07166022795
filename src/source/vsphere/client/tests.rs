//! The SOAP session against a scripted server on loopback: paging, version discovery,
//! and bounded waits on hung or dropping servers.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><soapenv:Envelope \
         xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>{body}\
         </soapenv:Body></soapenv:Envelope>"
    )
}

fn object(name: &str) -> String {
    format!(
        "<objects><obj type=\"VirtualMachine\">{name}</obj><propSet><name>name</name>\
         <val xsi:type=\"xsd:string\">{name}</val></propSet></objects>"
    )
}

/// What the mock does with RetrievePropertiesEx.
#[derive(Clone, Copy, PartialEq)]
enum Rpe {
    Answer,
    /// Read it and never answer (a hung server).
    Hang,
    /// Close the connection without an answer.
    Drop,
}

/// A server answering each request by what its body asks for; records SOAPActions,
/// and "RetrievePropertiesEx" for each such request.
fn mock(actions: Arc<Mutex<Vec<String>>>) -> u16 {
    mock_with(actions, Rpe::Answer)
}

fn mock_with(actions: Arc<Mutex<Vec<String>>>, rpe: Rpe) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let actions = actions.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if let Some(v) = lower.strip_prefix("soapaction:") {
                            actions.lock().unwrap().push(v.trim().to_owned());
                        }
                    }
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).unwrap();
                    let body = String::from_utf8_lossy(&body);
                    if body.contains("<RetrievePropertiesEx") {
                        actions.lock().unwrap().push("RetrievePropertiesEx".into());
                        match rpe {
                            Rpe::Answer => {}
                            Rpe::Hang => {
                                std::thread::sleep(Duration::from_secs(60));
                                return;
                            }
                            Rpe::Drop => return,
                        }
                    }
                    let answer = if line.contains("vimServiceVersions") {
                        "<namespaces><namespace><name>urn:vim25</name>\
                         <version>8.0.1.0</version></namespace></namespaces>"
                            .to_owned()
                    } else if body.contains("<RetrieveServiceContent") {
                        envelope(
                            "<RetrieveServiceContentResponse xmlns=\"urn:vim25\"><returnval>\
                             <rootFolder type=\"Folder\">group-d1</rootFolder>\
                             <propertyCollector type=\"PropertyCollector\">pc</propertyCollector>\
                             <viewManager type=\"ViewManager\">vm</viewManager>\
                             <about><apiVersion>8.0.1.0</apiVersion><apiType>VirtualCenter</apiType>\
                             <instanceUuid>u-1</instanceUuid></about>\
                             <sessionManager type=\"SessionManager\">sm</sessionManager>\
                             <searchIndex type=\"SearchIndex\">si</searchIndex>\
                             </returnval></RetrieveServiceContentResponse>",
                        )
                    } else if body.contains("<Login") {
                        envelope("<LoginResponse xmlns=\"urn:vim25\"><returnval/></LoginResponse>")
                    } else if body.contains("<RetrievePropertiesEx") {
                        envelope(&format!(
                            "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval>\
                             <token>t1</token>{}</returnval></RetrievePropertiesExResponse>",
                            object("vm-1")
                        ))
                    } else if body.contains("<token>t1</token>") {
                        envelope(&format!(
                            "<ContinueRetrievePropertiesExResponse xmlns=\"urn:vim25\">\
                             <returnval>{}</returnval></ContinueRetrievePropertiesExResponse>",
                            object("vm-2")
                        ))
                    } else {
                        envelope("<x/>")
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\
                         Set-Cookie: vmware_soap_session=\"abc\"; Path=/; HttpOnly\r\n\
                         Content-Length: {}\r\n\r\n",
                        answer.len()
                    );
                    if w.write_all(head.as_bytes()).is_err()
                        || w.write_all(answer.as_bytes()).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn config(port: u16, soap_timeout: Duration) -> ConnectConfig {
    ConnectConfig {
        base: format!("http://127.0.0.1:{port}"),
        host: "127.0.0.1".into(),
        port,
        creds: Credentials {
            username: "u".into(),
            password: "p".into(),
        },
        thumbprint: None,
        insecure: false,
        soap_timeout,
    }
}

#[test]
fn pages_with_continue_and_uses_the_discovered_version() {
    let actions = Arc::new(Mutex::new(Vec::new()));
    let port = mock(actions.clone());
    let c = Client::connect(config(port, Duration::from_secs(30))).unwrap();
    assert_eq!(
        c.sc.property_collector,
        Moref::new("PropertyCollector", "pc")
    );
    assert_eq!(c.sc.instance_uuid, "u-1");
    assert_eq!(c.cookie().as_deref(), Some("\"abc\""));
    let set = "<objectSet><obj type=\"Folder\">group-d1</obj></objectSet>";
    let got = c.retrieve(set, "VirtualMachine", &["name"]).unwrap();
    let names: Vec<_> = got.iter().map(|o| o.obj.value.as_str()).collect();
    assert_eq!(names, ["vm-1", "vm-2"]);
    assert_eq!(got[1].props["name"].text, "vm-2");
    assert!(actions
        .lock()
        .unwrap()
        .iter()
        .filter(|a| *a != "RetrievePropertiesEx")
        .all(|a| a == "\"urn:vim25/8.0.1.0\""));
}

fn rpe_count(actions: &Mutex<Vec<String>>) -> usize {
    let a = actions.lock().unwrap();
    a.iter().filter(|a| *a == "RetrievePropertiesEx").count()
}

#[test]
fn a_hung_server_fails_a_call_after_one_timeout() {
    let actions = Arc::new(Mutex::new(Vec::new()));
    let port = mock_with(actions.clone(), Rpe::Hang);
    let timeout = Duration::from_secs(1);
    let c = Client::connect(config(port, timeout)).unwrap();
    let t = Instant::now();
    let set = "<objectSet><obj type=\"Folder\">group-d1</obj></objectSet>";
    let e = c.retrieve(set, "VirtualMachine", &["name"]).unwrap_err();
    let took = t.elapsed();
    assert_eq!(
        e.to_string(),
        format!("127.0.0.1:{port}: unreachable: timed out")
    );
    // One attempt: retrying a read that timed out would only double the wait.
    assert_eq!(rpe_count(&actions), 1);
    // Generous for a loaded machine: the retries the count rules out would add 1 s each.
    assert!(took >= timeout && took < timeout * 3, "took {took:?}");
}

#[test]
fn dropped_connections_are_retried_within_the_timeout() {
    let actions = Arc::new(Mutex::new(Vec::new()));
    let port = mock_with(actions.clone(), Rpe::Drop);
    // Room for all four attempts (backoff 0.2 + 0.6 + 1.8 s).
    let c = Client::connect(config(port, Duration::from_secs(5))).unwrap();
    let set = "<objectSet><obj type=\"Folder\">group-d1</obj></objectSet>";
    let e = c.retrieve(set, "VirtualMachine", &["name"]).unwrap_err();
    assert!(matches!(e, VsError::Unreachable { .. }), "{e}");
    assert_eq!(rpe_count(&actions), 4);
    // A short timeout ends the retries early: backoffs of 0.2 s and 0.6 s fit in 1 s,
    // the next one of 1.8 s does not.
    let actions = Arc::new(Mutex::new(Vec::new()));
    let port = mock_with(actions.clone(), Rpe::Drop);
    let c = Client::connect(config(port, Duration::from_secs(1))).unwrap();
    let t = Instant::now();
    let e = c.retrieve(set, "VirtualMachine", &["name"]).unwrap_err();
    assert!(matches!(e, VsError::Unreachable { .. }), "{e}");
    assert_eq!(rpe_count(&actions), 3);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t.elapsed()
    );
}

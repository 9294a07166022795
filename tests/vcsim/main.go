// vcsim launcher for vmsnapfs' vSphere tests: govmomi's vCenter simulator (Debian's
// golang-github-vmware-govmomi-dev ships the library but no binary) on 127.0.0.1, over
// HTTP or HTTPS with the simulator's self-signed certificate. Prints one JSON line
// (URL, datastore name -> host folder, VM names) so a test can place disk chains in the
// datastore folders, then serves until SIGTERM/SIGINT.
//
// The simulator speaks API 6.5 and has no CreateSnapshotEx_Task; -api makes it report
// another version, and its SOAP handler is wrapped so that CreateSnapshotEx_Task (and
// CreateSnapshot_Task) requests are decoded strictly against the WSDL's shape, recorded
// for the tests (GET /calls on the control server), and executed by the simulator itself
// as the equivalent CreateSnapshot_Task, so its state stays the oracle.
//
// The simulator has no changed block tracking; cbtCalls adds it: each
// snapshot of a VM with config.changeTrackingEnabled records, per disk, hashes of the
// disk's 64 KiB blocks as qemu-img reads them and gives the snapshot's disk backing a
// changeId; QueryChangedDiskAreas answers from those records, a page at a time.
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim tests/vcsim/main.go
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	useTLS := flag.Bool("tls", false, "serve HTTPS with the simulator's self-signed certificate")
	user := flag.String("user", "vmsnapfs", "the only user name Login accepts")
	pass := flag.String("pass", "secret", "the only password Login accepts")
	vms := flag.Int("vms", 2, "VMs on the standalone host")
	folders := flag.Int("folder", 0, "put the datacenter (and its VMs) in a folder")
	api := flag.String("api", "", "API version to report in ServiceContent and vimServiceVersions.xml (e.g. 8.0.2.0)")
	noEx := flag.Bool("no-snapshot-ex", false, "answer CreateSnapshotEx_Task with MethodNotFound, as a server without it does")
	flag.IntVar(&cbtPage, "cbt-page", 8, "changed areas QueryChangedDiskAreas answers at most per call (the client must call again)")
	flag.Parse()

	model := simulator.VPX()
	model.Cluster = 0
	model.ClusterHost = 0
	model.Machine = *vms
	model.Folder = *folders
	if *api != "" {
		// Both RetrieveServiceContent and /sdk/vimServiceVersions.xml answer from this.
		model.ServiceContent.About.ApiVersion = *api
	}
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	if *useTLS {
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned()}}
	}
	server := model.Service.NewServer()
	// The server is already listening, but no one knows its address until the control
	// client below starts and the JSON line is printed.
	server.Config.Handler = cbtCalls(snapshotCalls(server.Config.Handler, *noEx))

	control, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go serveControl(control, server.URL)

	out := struct {
		Control    string            `json:"control"`
		URL        string            `json:"url"`
		Datastores map[string]string `json:"datastores"`
		VMs        []string          `json:"vms"`
	}{Datastores: map[string]string{}, Control: "http://" + control.Addr().String()}
	u := *server.URL
	u.User = nil
	out.URL = u.String()
	for _, obj := range simulator.Map.All("Datastore") {
		ds := obj.(*simulator.Datastore)
		out.Datastores[ds.Name] = ds.Info.GetDatastoreInfo().Url
	}
	for _, obj := range simulator.Map.All("VirtualMachine") {
		out.VMs = append(out.VMs, obj.(*simulator.VirtualMachine).Name)
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	server.Close()
	model.Remove()
}

func findVM(name string) *simulator.VirtualMachine {
	for _, obj := range simulator.Map.All("VirtualMachine") {
		if vm := obj.(*simulator.VirtualMachine); vm.Name == name {
			return vm
		}
	}
	return nil
}

func snapshotNames(list []types.VirtualMachineSnapshotTree, out *[]string) {
	for _, n := range list {
		*out = append(*out, n.Name)
		snapshotNames(n.ChildSnapshotList, out)
	}
}

// serveControl answers the tests' questions from the simulator's own state, so the
// tests check vmsnapfs with a second, independent client:
//
//	GET  /snapshots?vm=NAME             JSON list of the VM's snapshot names
//	POST /snapshot?vm=NAME&name=SNAP    creates a snapshot (someone else's)
//	GET  /disks?vm=NAME                 JSON list of the VM's disk backing file names
//	POST /tools?vm=NAME&status=STATUS   sets guest.toolsRunningStatus
//	GET  /calls?method=METHOD           JSON list of the CreateSnapshotEx_Task,
//	                                    CreateSnapshot_Task or QueryChangedDiskAreas
//	                                    requests received, decoded, with the answer
//	GET  /cbt?vm=NAME                   changeTrackingEnabled, the disks' keys, the
//	                                    tracked disks (UUID, change ids) and each
//	                                    snapshot's change ids
//	POST /cbt?vm=NAME&enabled=BOOL      ReconfigVM_Task(changeTrackingEnabled=BOOL),
//	                                    then as GET
func serveControl(l net.Listener, u *url.URL) {
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		log.Fatal(err)
	}
	reply := func(w http.ResponseWriter, v interface{}) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/snapshots", func(w http.ResponseWriter, r *http.Request) {
		vm := findVM(r.URL.Query().Get("vm"))
		if vm == nil {
			http.Error(w, "no such VM", 404)
			return
		}
		names := []string{}
		simulator.Map.WithLock(vm, func() {
			if vm.Snapshot != nil {
				snapshotNames(vm.Snapshot.RootSnapshotList, &names)
			}
		})
		reply(w, names)
	})
	mux.HandleFunc("/vm", func(w http.ResponseWriter, r *http.Request) {
		vm := findVM(r.URL.Query().Get("vm"))
		if vm == nil {
			http.Error(w, "no such VM", 404)
			return
		}
		snaps := map[string]string{}
		var walk func([]types.VirtualMachineSnapshotTree)
		walk = func(list []types.VirtualMachineSnapshotTree) {
			for _, n := range list {
				snaps[n.Name] = n.Snapshot.Value
				walk(n.ChildSnapshotList)
			}
		}
		simulator.Map.WithLock(vm, func() {
			if vm.Snapshot != nil {
				walk(vm.Snapshot.RootSnapshotList)
			}
		})
		reply(w, map[string]interface{}{"moref": vm.Self.Value, "snapshots": snaps})
	})
	mux.HandleFunc("/consolidate", func(w http.ResponseWriter, r *http.Request) {
		vm := findVM(r.URL.Query().Get("vm"))
		if vm == nil {
			http.Error(w, "no such VM", 404)
			return
		}
		simulator.Map.WithLock(vm, func() {
			vm.Runtime.ConsolidationNeeded = types.NewBool(true)
		})
		reply(w, "ok")
	})
	mux.HandleFunc("/template", func(w http.ResponseWriter, r *http.Request) {
		vm := findVM(r.URL.Query().Get("vm"))
		if vm == nil {
			http.Error(w, "no such VM", 404)
			return
		}
		simulator.Map.WithLock(vm, func() {
			vm.Config.Template = true
		})
		reply(w, "ok")
	})
	mux.HandleFunc("/snapshot", func(w http.ResponseWriter, r *http.Request) {
		vm := findVM(r.URL.Query().Get("vm"))
		if vm == nil {
			http.Error(w, "no such VM", 404)
			return
		}
		obj := object.NewVirtualMachine(c.Client, vm.Reference())
		task, err := obj.CreateSnapshot(ctx, r.URL.Query().Get("name"), "made by the test", false, false)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		reply(w, "ok")
	})
	mux.HandleFunc("/disks", func(w http.ResponseWriter, r *http.Request) {
		vm := findVM(r.URL.Query().Get("vm"))
		if vm == nil {
			http.Error(w, "no such VM", 404)
			return
		}
		files := []string{}
		simulator.Map.WithLock(vm, func() {
			for _, d := range vm.Config.Hardware.Device {
				if disk, ok := d.(*types.VirtualDisk); ok {
					if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
						files = append(files, b.GetVirtualDeviceFileBackingInfo().FileName)
					}
				}
			}
		})
		reply(w, files)
	})
	mux.HandleFunc("/tools", func(w http.ResponseWriter, r *http.Request) {
		vm := findVM(r.URL.Query().Get("vm"))
		if vm == nil {
			http.Error(w, "no such VM", 404)
			return
		}
		simulator.Map.WithLock(vm, func() {
			vm.Guest.ToolsRunningStatus = r.URL.Query().Get("status")
		})
		reply(w, "ok")
	})
	mux.HandleFunc("/cbt", func(w http.ResponseWriter, r *http.Request) {
		vm := findVM(r.URL.Query().Get("vm"))
		if vm == nil {
			http.Error(w, "no such VM", 404)
			return
		}
		if r.Method == http.MethodPost {
			// Through the simulator's own ReconfigVM_Task, as an admin would.
			on := r.URL.Query().Get("enabled") == "true"
			obj := object.NewVirtualMachine(c.Client, vm.Reference())
			task, err := obj.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: &on})
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		reply(w, cbtReport(vm))
	})
	mux.HandleFunc("/calls", func(w http.ResponseWriter, r *http.Request) {
		method := r.URL.Query().Get("method")
		if method == "QueryChangedDiskAreas" {
			cbtMu.Lock()
			out := append([]cbtCall{}, cbtLog...)
			cbtMu.Unlock()
			reply(w, out)
			return
		}
		out := []snapshotCall{}
		callsMu.Lock()
		for _, c := range calls {
			if c.Method == method {
				out = append(out, c)
			}
		}
		callsMu.Unlock()
		reply(w, out)
	})
	log.Fatal(http.Serve(l, mux))
}

// selfSigned makes a fresh RSA-2048 certificate for 127.0.0.1, like the one a vCenter
// generates at install (the simulator's built-in test certificate has a 1024-bit key,
// which TLS libraries rightly refuse).
func selfSigned() tls.Certificate {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

const (
	nsEnv = "http://schemas.xmlsoap.org/soap/envelope/"
	nsXSI = "http://www.w3.org/2001/XMLSchema-instance"
	nsVim = "urn:vim25"
)

// snapshotCall is one CreateSnapshotEx_Task or CreateSnapshot_Task request as received.
type snapshotCall struct {
	Method      string       `json:"method"`
	SOAPAction  string       `json:"soapAction"`
	This        string       `json:"this"`
	Name        string       `json:"name"`
	Description *string      `json:"description"`
	Memory      bool         `json:"memory"`
	Quiesce     *bool        `json:"quiesce"`     // CreateSnapshot_Task only
	QuiesceSpec *quiesceSpec `json:"quiesceSpec"` // CreateSnapshotEx_Task only; null when absent
	// "executed", or the fault it was answered with ("InvalidRequest: why", ...).
	Answer string `json:"answer"`
}

// quiesceSpec is a VirtualMachineGuestQuiesceSpec or VirtualMachineWindowsQuiesceSpec.
type quiesceSpec struct {
	Type                   string  `json:"type"`
	Timeout                *int64  `json:"timeout"`
	VssBackupType          *int64  `json:"vssBackupType,omitempty"`
	VssBootableSystemState *bool   `json:"vssBootableSystemState,omitempty"`
	VssPartialFileSupport  *bool   `json:"vssPartialFileSupport,omitempty"`
	VssBackupContext       *string `json:"vssBackupContext,omitempty"`
}

var (
	callsMu sync.Mutex
	calls   []snapshotCall
)

func record(c snapshotCall) {
	callsMu.Lock()
	calls = append(calls, c)
	callsMu.Unlock()
}

// badRequest is a request that does not have the WSDL's shape (InvalidRequest), or whose
// values the server refuses (InvalidArgument, with the offending property).
type badRequest struct {
	kind, property, msg string
	// Fault properties, as XML, for faults that have more than invalidProperty.
	detail string
}

func (e *badRequest) Error() string { return e.msg }

func invalid(format string, a ...interface{}) error {
	return &badRequest{kind: "InvalidRequest", msg: fmt.Sprintf(format, a...)}
}

// snapshotCalls wraps the simulator's handler: snapshot requests to /sdk are decoded
// strictly and recorded; CreateSnapshotEx_Task is then answered by the simulator as the
// equivalent CreateSnapshot_Task (quiesce = a quiesceSpec is present), or with
// MethodNotFound when noEx is set.
func snapshotCalls(inner http.Handler, noEx bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/sdk" {
			inner.ServeHTTP(w, r)
			return
		}
		body, err := ioutil.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = ioutil.NopCloser(bytes.NewReader(body))
		if !bytes.Contains(body, []byte("CreateSnapshot")) {
			inner.ServeHTTP(w, r)
			return
		}
		c, err := decodeSnapshotCall(body)
		if c == nil || c.Method == "" {
			inner.ServeHTTP(w, r) // some other method, or not even a SOAP request
			return
		}
		c.SOAPAction = r.Header.Get("SOAPAction")
		if err != nil {
			bad := err.(*badRequest)
			c.Answer = bad.kind + ": " + bad.msg
			record(*c)
			detail := ""
			if bad.property != "" {
				detail = "<invalidProperty>" + esc(bad.property) + "</invalidProperty>"
			}
			writeFault(w, bad.kind, bad.msg, detail)
			return
		}
		if c.Method == "CreateSnapshot_Task" {
			c.Answer = "executed"
			record(*c)
			inner.ServeHTTP(w, r)
			return
		}
		if noEx {
			c.Answer = "MethodNotFound"
			record(*c)
			writeFault(w, "MethodNotFound", c.This+" does not implement: CreateSnapshotEx_Task",
				`<receiver type="VirtualMachine">`+esc(c.This)+`</receiver><method>CreateSnapshotEx_Task</method>`)
			return
		}
		c.Answer = "executed"
		record(*c)
		desc := ""
		if c.Description != nil {
			desc = "<description>" + esc(*c.Description) + "</description>"
		}
		legacy := xml.Header + `<soapenv:Envelope xmlns:soapenv="` + nsEnv + `"><soapenv:Body>` +
			`<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">` + esc(c.This) +
			`</_this><name>` + esc(c.Name) + `</name>` + desc +
			`<memory>` + strconv.FormatBool(c.Memory) + `</memory>` +
			`<quiesce>` + strconv.FormatBool(c.QuiesceSpec != nil) + `</quiesce>` +
			`</CreateSnapshot_Task></soapenv:Body></soapenv:Envelope>`
		r2 := r.Clone(r.Context())
		r2.Body = ioutil.NopCloser(strings.NewReader(legacy))
		r2.ContentLength = int64(len(legacy))
		r2.Header.Del("Content-Length")
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r2)
		out := bytes.Replace(rec.Body.Bytes(), []byte("CreateSnapshot_TaskResponse"),
			[]byte("CreateSnapshotEx_TaskResponse"), -1)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(out)
	})
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeFault answers with a SOAP fault shaped as vCenter's.
func writeFault(w http.ResponseWriter, kind, msg, detail string) {
	body := xml.Header + `<soapenv:Envelope xmlns:soapenv="` + nsEnv + `" xmlns:xsi="` + nsXSI + `">` +
		`<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>` + esc(msg) +
		`</faultstring><detail><` + kind + `Fault xmlns="urn:vim25" xsi:type="` + kind + `">` + detail +
		`</` + kind + `Fault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, body)
}

// strictDecoder walks a SOAP request token by token: elements must come in the WSDL's
// order, nothing unknown is skipped, and text may only stand in leaf elements.
type strictDecoder struct {
	d *xml.Decoder
	// Namespace prefixes declared on the elements opened so far (for xsi:type values).
	prefixes map[string]string
}

// next returns the next start or end element; blank text between elements is allowed.
func (s *strictDecoder) next() (xml.Token, error) {
	for {
		t, err := s.d.Token()
		if err != nil {
			return nil, invalid("malformed XML: %v", err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" {
					s.prefixes[a.Name.Local] = a.Value
				}
			}
			return t, nil
		case xml.EndElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, invalid("unexpected text %q", string(t))
			}
		}
	}
}

// start expects the start of element {space}local.
func (s *strictDecoder) start(space, local string) (xml.StartElement, error) {
	t, err := s.next()
	if err != nil {
		return xml.StartElement{}, err
	}
	st, ok := t.(xml.StartElement)
	if !ok || st.Name.Space != space || st.Name.Local != local {
		return xml.StartElement{}, invalid("expected <%s> in %s, got %s", local, space, describe(t))
	}
	return st, nil
}

// end expects the end of the element open now.
func (s *strictDecoder) end(local string) error {
	t, err := s.next()
	if err != nil {
		return err
	}
	if _, ok := t.(xml.EndElement); !ok {
		return invalid("expected </%s>, got %s", local, describe(t))
	}
	return nil
}

// text reads a leaf element's text up to its end.
func (s *strictDecoder) text(st xml.StartElement) (string, error) {
	var b strings.Builder
	for {
		t, err := s.d.Token()
		if err != nil {
			return "", invalid("malformed XML: %v", err)
		}
		switch t := t.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			return b.String(), nil
		case xml.StartElement:
			return "", invalid("<%s> holds an element <%s>; it takes text only", st.Name.Local, t.Name.Local)
		}
	}
}

func describe(t xml.Token) string {
	switch t := t.(type) {
	case xml.StartElement:
		return fmt.Sprintf("<%s> in %s", t.Name.Local, t.Name.Space)
	case xml.EndElement:
		return fmt.Sprintf("</%s>", t.Name.Local)
	}
	return fmt.Sprintf("%T", t)
}

// field is one element of an xsd:sequence.
type field struct {
	name     string
	optional bool
	read     func(xml.StartElement) error
}

// sequence reads the children of the element open now, in the order fields gives, up to
// that element's end.
func (s *strictDecoder) sequence(parent string, fields []field) error {
	i := 0
	for {
		t, err := s.next()
		if err != nil {
			return err
		}
		if _, ok := t.(xml.EndElement); ok {
			for ; i < len(fields); i++ {
				if !fields[i].optional {
					return invalid("<%s> lacks <%s>", parent, fields[i].name)
				}
			}
			return nil
		}
		st := t.(xml.StartElement)
		if st.Name.Space != nsVim {
			return invalid("<%s> in %s inside <%s>: not in urn:vim25", st.Name.Local, st.Name.Space, parent)
		}
		for i < len(fields) && fields[i].name != st.Name.Local && fields[i].optional {
			i++
		}
		if i == len(fields) || fields[i].name != st.Name.Local {
			want := "its end"
			if i < len(fields) {
				want = "<" + fields[i].name + ">"
			}
			return invalid("<%s> inside <%s> is unknown, repeated or out of order (expected %s)",
				st.Name.Local, parent, want)
		}
		if err := fields[i].read(st); err != nil {
			return err
		}
		i++
	}
}

func (s *strictDecoder) boolean(st xml.StartElement, out *bool) error {
	v, err := s.text(st)
	if err != nil {
		return err
	}
	switch strings.TrimSpace(v) {
	case "true", "1":
		*out = true
	case "false", "0":
		*out = false
	default:
		return invalid("<%s>%s</%s> is not an xsd:boolean", st.Name.Local, v, st.Name.Local)
	}
	return nil
}

func (s *strictDecoder) integer(st xml.StartElement, out **int64) error {
	v, err := s.text(st)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return invalid("<%s>%s</%s> is not an xsd:int", st.Name.Local, v, st.Name.Local)
	}
	*out = &n
	return nil
}

func (s *strictDecoder) str(st xml.StartElement, out **string) error {
	v, err := s.text(st)
	if err != nil {
		return err
	}
	*out = &v
	return nil
}

// xsiType is the vim25 type an element's xsi:type names ("" if none or another namespace).
func (s *strictDecoder) xsiType(st xml.StartElement) (string, error) {
	for _, a := range st.Attr {
		if a.Name.Space != nsXSI || a.Name.Local != "type" {
			continue
		}
		v := strings.TrimSpace(a.Value)
		ns := st.Name.Space // an unprefixed QName is in the default namespace
		if i := strings.IndexByte(v, ':'); i >= 0 {
			ns = s.prefixes[v[:i]]
			v = v[i+1:]
		}
		if ns != nsVim {
			return "", invalid("xsi:type %q is not a urn:vim25 type", a.Value)
		}
		return v, nil
	}
	return "", invalid("<%s> has no xsi:type", st.Name.Local)
}

// decodeSnapshotCall decodes a CreateSnapshotEx_Task or CreateSnapshot_Task request;
// (nil, nil) for any other method. On a shape error the call is returned as far as it
// was read, with a *badRequest.
func decodeSnapshotCall(body []byte) (*snapshotCall, error) {
	s := &strictDecoder{d: xml.NewDecoder(bytes.NewReader(body)), prefixes: map[string]string{}}
	c := &snapshotCall{}
	if _, err := s.start(nsEnv, "Envelope"); err != nil {
		return c, err
	}
	t, err := s.next()
	if err != nil {
		return c, err
	}
	if st, ok := t.(xml.StartElement); ok && st.Name.Space == nsEnv && st.Name.Local == "Header" {
		if err := s.d.Skip(); err != nil {
			return c, invalid("malformed XML: %v", err)
		}
		t, err = s.next()
		if err != nil {
			return c, err
		}
	}
	if st, ok := t.(xml.StartElement); !ok || st.Name.Space != nsEnv || st.Name.Local != "Body" {
		return c, invalid("expected the SOAP Body, got %s", describe(t))
	}
	t, err = s.next()
	if err != nil {
		return c, err
	}
	m, ok := t.(xml.StartElement)
	if !ok {
		return c, invalid("empty SOAP Body")
	}
	if m.Name.Local != "CreateSnapshotEx_Task" && m.Name.Local != "CreateSnapshot_Task" {
		return nil, nil
	}
	c.Method = m.Name.Local
	if m.Name.Space != nsVim {
		return c, invalid("<%s> in %q, not urn:vim25", m.Name.Local, m.Name.Space)
	}
	fields := []field{
		{name: "_this", read: func(st xml.StartElement) error {
			kind := ""
			for _, a := range st.Attr {
				if a.Name.Space == "" && a.Name.Local == "type" {
					kind = a.Value
				}
			}
			if kind != "VirtualMachine" {
				return invalid("_this is of type %q, not VirtualMachine", kind)
			}
			v, err := s.text(st)
			c.This = strings.TrimSpace(v)
			return err
		}},
		{name: "name", read: func(st xml.StartElement) error {
			v, err := s.text(st)
			c.Name = v
			return err
		}},
		{name: "description", optional: true, read: func(st xml.StartElement) error {
			return s.str(st, &c.Description)
		}},
		{name: "memory", read: func(st xml.StartElement) error {
			return s.boolean(st, &c.Memory)
		}},
	}
	if c.Method == "CreateSnapshot_Task" {
		fields = append(fields, field{name: "quiesce", read: func(st xml.StartElement) error {
			var q bool
			c.Quiesce = &q
			return s.boolean(st, &q)
		}})
	} else {
		fields = append(fields, field{name: "quiesceSpec", optional: true, read: func(st xml.StartElement) error {
			return s.quiesceSpec(st, c)
		}})
	}
	if err := s.sequence(c.Method, fields); err != nil {
		return c, err
	}
	if err := s.end("Body"); err != nil {
		return c, err
	}
	if err := s.end("Envelope"); err != nil {
		return c, err
	}
	for {
		t, err := s.d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, invalid("malformed XML after the envelope: %v", err)
		}
		if cd, ok := t.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			return c, invalid("content after the envelope")
		}
	}
	return c, nil
}

// quiesceSpec reads a VirtualMachineGuestQuiesceSpec (timeout) or its extension
// VirtualMachineWindowsQuiesceSpec (then the VSS settings), in the WSDL's order.
func (s *strictDecoder) quiesceSpec(st xml.StartElement, c *snapshotCall) error {
	kind, err := s.xsiType(st)
	if err != nil {
		return err
	}
	q := &quiesceSpec{Type: kind}
	fields := []field{{name: "timeout", optional: true, read: func(st xml.StartElement) error {
		return s.integer(st, &q.Timeout)
	}}}
	switch kind {
	case "VirtualMachineGuestQuiesceSpec":
	case "VirtualMachineWindowsQuiesceSpec":
		fields = append(fields,
			field{name: "vssBackupType", optional: true, read: func(st xml.StartElement) error {
				return s.integer(st, &q.VssBackupType)
			}},
			field{name: "vssBootableSystemState", optional: true, read: func(st xml.StartElement) error {
				var b bool
				q.VssBootableSystemState = &b
				return s.boolean(st, &b)
			}},
			field{name: "vssPartialFileSupport", optional: true, read: func(st xml.StartElement) error {
				var b bool
				q.VssPartialFileSupport = &b
				return s.boolean(st, &b)
			}},
			field{name: "vssBackupContext", optional: true, read: func(st xml.StartElement) error {
				return s.str(st, &q.VssBackupContext)
			}})
	default:
		return invalid("quiesceSpec of unknown type %q", kind)
	}
	if err := s.sequence("quiesceSpec", fields); err != nil {
		return err
	}
	c.QuiesceSpec = q
	// The API reference: "The timeout can not be less than 5 minutes or more than 240
	// minutes"; an invalid quiesceSpec is an InvalidArgument.
	if q.Timeout != nil && (*q.Timeout < 5 || *q.Timeout > 240) {
		return &badRequest{kind: "InvalidArgument", property: "quiesceSpec.timeout",
			msg: fmt.Sprintf("quiesceSpec.timeout %d is outside 5-240 minutes", *q.Timeout)}
	}
	if v := q.VssBackupContext; v != nil && *v != "ctx_auto" && *v != "ctx_backup" && *v != "ctx_file_share_backup" {
		return &badRequest{kind: "InvalidArgument", property: "quiesceSpec.vssBackupContext",
			msg: fmt.Sprintf("vssBackupContext %q is not a VssBackupContext", *v)}
	}
	return nil
}

// ---- Changed block tracking ----
//
// The simulator keeps changeTrackingEnabled (ReconfigVM_Task sets it) but tracks
// nothing. Here, each snapshot made of a VM whose config has changeTrackingEnabled
// reads every disk of the VM with an independent reader (qemu-img convert -O raw of the
// disk's backing file, the chain head, in its datastore folder) and records, per 64 KiB
// block, a SHA-256 of its bytes and whether qemu-img map says it holds data. The
// snapshot's disk backing gets a changeId of VMware's form ("52 xx xx xx xx xx xx
// xx-xx xx xx xx xx xx xx xx/N": the disk's tracking UUID, then a sequence number) and
// a capacity that is the disk's (the simulator's config keeps its default otherwise).
// QueryChangedDiskAreas(snapshot S, deviceKey, startOffset, changeId C) then answers
// the blocks whose hash differs between C's record and S's (for "*": the blocks with
// data at S), merged into areas, at most -cbt-page areas per call, with length up to
// the end of the last area returned (or to the capacity when no more changed), as a
// host does: a client must call again from startOffset+length until the capacity.

const cbtBlock = 64 << 10

var cbtPage = 8

// diskState is one disk's content as recorded at one snapshot.
type diskState struct {
	capacity int64
	hashes   [][32]byte
	data     []bool
}

// diskTrack is one disk's tracking: its UUID and the states its change ids name.
type diskTrack struct {
	uuid   string
	n      int
	states map[string]*diskState
	file   string
}

// snapDisk is what a snapshot recorded for one disk.
type snapDisk struct {
	ChangeID string `json:"changeId"`
	Error    string `json:"error,omitempty"`
	state    *diskState
}

// cbtCall is one QueryChangedDiskAreas request as received, and how it was answered.
type cbtCall struct {
	This        string `json:"this"`
	Snapshot    string `json:"snapshot"`
	DeviceKey   *int64 `json:"deviceKey"`
	StartOffset *int64 `json:"startOffset"`
	ChangeID    string `json:"changeId"`
	// "N areas, length L", or the fault.
	Answer string `json:"answer"`
}

var (
	cbtMu   sync.Mutex
	tracks  = map[string]map[int32]*diskTrack{} // VM moref -> device key
	snapCbt = map[string]map[int32]*snapDisk{}  // snapshot moref -> device key
	cbtLog  []cbtCall
)

func newTrackUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] = 0x52
	h := make([]string, 16)
	for i, x := range b {
		h[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(h[:8], " ") + "-" + strings.Join(h[8:], " ")
}

// datastorePath maps "[ds] dir/file.vmdk" to the file on this machine.
func datastorePath(name string) (string, error) {
	if !strings.HasPrefix(name, "[") {
		return "", fmt.Errorf("%q is not a datastore path", name)
	}
	i := strings.Index(name, "]")
	if i < 0 {
		return "", fmt.Errorf("%q is not a datastore path", name)
	}
	ds, rel := name[1:i], strings.TrimSpace(name[i+1:])
	for _, obj := range simulator.Map.All("Datastore") {
		if d := obj.(*simulator.Datastore); d.Name == ds {
			return d.Info.GetDatastoreInfo().Url + "/" + rel, nil
		}
	}
	return "", fmt.Errorf("no datastore %q", ds)
}

// readDisk records the disk at path as qemu-img reads it.
func readDisk(path string) (*diskState, error) {
	tmp, err := ioutil.TempFile("", "vcsim-cbt-*.raw")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", path, tmp.Name()).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img convert %s: %v: %s", path, err, out)
	}
	f, err := os.Open(tmp.Name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st := &diskState{capacity: info.Size()}
	blocks := (st.capacity + cbtBlock - 1) / cbtBlock
	st.hashes = make([][32]byte, blocks)
	st.data = make([]bool, blocks)
	buf := make([]byte, cbtBlock)
	for b := int64(0); b < blocks; b++ {
		n, err := io.ReadFull(f, buf)
		if err != nil && err != io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("reading %s converted: %v", path, err)
		}
		st.hashes[b] = sha256.Sum256(buf[:n])
	}
	out, err := exec.Command("qemu-img", "map", "--output=json", path).Output()
	if err != nil {
		return nil, fmt.Errorf("qemu-img map %s: %v", path, err)
	}
	var extents []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal(out, &extents); err != nil {
		return nil, fmt.Errorf("qemu-img map %s: %v", path, err)
	}
	for _, e := range extents {
		if !e.Data || e.Length <= 0 {
			continue
		}
		for b := e.Start / cbtBlock; b*cbtBlock < e.Start+e.Length && b < blocks; b++ {
			st.data[b] = true
		}
	}
	return st, nil
}

// recordSnapshot runs after the simulator made snapshot snap of vm: for a VM with
// changeTrackingEnabled, records each disk's state under a new change id and puts the
// id (and the disk's real capacity) in the snapshot's config. The snapshot's devices
// are copied first: the simulator's snapshot config shares them with the VM's.
func recordSnapshot(vmRef, snapRef types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	snap, ok := simulator.Map.Get(snapRef).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return
	}
	enabled := false
	type diskAt struct {
		key  int32
		file string
	}
	var disks []diskAt
	simulator.Map.WithLock(snap, func() {
		if e := snap.Config.ChangeTrackingEnabled; e != nil && *e {
			enabled = true
		}
		for _, d := range snap.Config.Hardware.Device {
			if disk, ok := d.(*types.VirtualDisk); ok {
				if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					disks = append(disks, diskAt{disk.Key, b.GetVirtualDeviceFileBackingInfo().FileName})
				}
			}
		}
	})
	if !enabled {
		return
	}
	recorded := map[int32]*snapDisk{}
	for _, d := range disks {
		sd := &snapDisk{}
		path, err := datastorePath(d.file)
		var st *diskState
		if err == nil {
			st, err = readDisk(path)
		}
		cbtMu.Lock()
		byKey := tracks[vm.Self.Value]
		if byKey == nil {
			byKey = map[int32]*diskTrack{}
			tracks[vm.Self.Value] = byKey
		}
		t := byKey[d.key]
		if t == nil || t.file != d.file {
			// A disk tracked afresh (new, or its backing replaced): a new UUID.
			t = &diskTrack{uuid: newTrackUUID(), states: map[string]*diskState{}, file: d.file}
			byKey[d.key] = t
		}
		t.n++
		sd.ChangeID = fmt.Sprintf("%s/%d", t.uuid, t.n)
		if err != nil {
			sd.Error = err.Error()
			log.Printf("cbt: %s disk %d: %v", vm.Name, d.key, err)
		} else {
			t.states[sd.ChangeID] = st
			sd.state = st
		}
		recorded[d.key] = sd
		cbtMu.Unlock()
	}
	cbtMu.Lock()
	snapCbt[snapRef.Value] = recorded
	cbtMu.Unlock()
	simulator.Map.WithLock(snap, func() {
		devs := make([]types.BaseVirtualDevice, len(snap.Config.Hardware.Device))
		for i, d := range snap.Config.Hardware.Device {
			devs[i] = d
			disk, ok := d.(*types.VirtualDisk)
			if !ok || recorded[disk.Key] == nil {
				continue
			}
			sd := recorded[disk.Key]
			dc := *disk
			switch b := disk.Backing.(type) {
			case *types.VirtualDiskFlatVer2BackingInfo:
				bc := *b
				bc.ChangeId = sd.ChangeID
				dc.Backing = &bc
			case *types.VirtualDiskSparseVer2BackingInfo:
				bc := *b
				bc.ChangeId = sd.ChangeID
				dc.Backing = &bc
			case *types.VirtualDiskSeSparseBackingInfo:
				bc := *b
				bc.ChangeId = sd.ChangeID
				dc.Backing = &bc
			default:
				continue
			}
			if sd.state != nil {
				dc.CapacityInBytes = sd.state.capacity
				dc.CapacityInKB = sd.state.capacity / 1024
			}
			devs[i] = &dc
		}
		snap.Config.Hardware.Device = devs
	})
}

// resetUntracked forgets the tracking of VMs whose changeTrackingEnabled is now off:
// switching it on again starts afresh (new UUIDs), as on a host, so earlier ids are void.
func resetUntracked() {
	cbtMu.Lock()
	defer cbtMu.Unlock()
	for ref := range tracks {
		vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: ref}).(*simulator.VirtualMachine)
		on := false
		if ok {
			simulator.Map.WithLock(vm, func() {
				on = vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
			})
		}
		if !on {
			delete(tracks, ref)
		}
	}
}

// changedAreas answers one QueryChangedDiskAreas: the areas from startOffset on, at
// most cbtPage of them, and the length of disk the answer covers.
func changedAreas(st *diskState, from *diskState, start int64) ([]types.DiskChangeExtent, int64) {
	var areas []types.DiskChangeExtent
	changed := func(b int64) bool {
		if from == nil {
			return st.data[b]
		}
		if b >= int64(len(from.hashes)) {
			return true
		}
		return st.hashes[b] != from.hashes[b]
	}
	blocks := int64(len(st.hashes))
	for b := start / cbtBlock; b < blocks; b++ {
		if !changed(b) {
			continue
		}
		s := b * cbtBlock
		if s < start {
			s = start
		}
		e := (b + 1) * cbtBlock
		if e > st.capacity {
			e = st.capacity
		}
		if n := len(areas); n > 0 && areas[n-1].Start+areas[n-1].Length == s {
			areas[n-1].Length = e - areas[n-1].Start
			continue
		}
		if len(areas) == cbtPage {
			// More changed beyond this page: the answer ends where its last area does.
			last := areas[len(areas)-1]
			return areas, last.Start + last.Length - start
		}
		areas = append(areas, types.DiskChangeExtent{Start: s, Length: e - s})
	}
	return areas, st.capacity - start
}

// queryChangedDiskAreas answers a decoded request, or returns the fault to answer.
func queryChangedDiskAreas(c *cbtCall) ([]types.DiskChangeExtent, int64, *badRequest) {
	vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: c.This}).(*simulator.VirtualMachine)
	if !ok {
		return nil, 0, &badRequest{kind: "ManagedObjectNotFound", msg: "The object 'vim.VirtualMachine:" + c.This + "' has already been deleted or has not been completely created"}
	}
	if c.Snapshot == "" {
		// A host compares with the running disk only for a powered-off VM without
		// snapshots; backups always name their snapshot, and so must the tests.
		return nil, 0, &badRequest{kind: "InvalidArgument", property: "snapshot", msg: "A specified parameter was not correct: snapshot"}
	}
	snap, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: c.Snapshot}).(*simulator.VirtualMachineSnapshot)
	if !ok || snap.Vm != vm.Self {
		return nil, 0, &badRequest{kind: "ManagedObjectNotFound", msg: "The object 'vim.vm.Snapshot:" + c.Snapshot + "' has already been deleted or has not been completely created"}
	}
	var file string
	found := false
	simulator.Map.WithLock(snap, func() {
		for _, d := range snap.Config.Hardware.Device {
			if disk, ok := d.(*types.VirtualDisk); ok && int64(disk.Key) == *c.DeviceKey {
				found = true
				if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					file = b.GetVirtualDeviceFileBackingInfo().FileName
				}
			}
		}
	})
	if !found {
		return nil, 0, &badRequest{kind: "InvalidArgument", property: "deviceKey", msg: "A specified parameter was not correct: deviceKey"}
	}
	cbtMu.Lock()
	defer cbtMu.Unlock()
	sd := snapCbt[c.Snapshot][int32(*c.DeviceKey)]
	fileFault := func(why string) *badRequest {
		// What a host answers when the disk's tracking cannot give the changes: a
		// FileFault naming the disk (the message says why here, for the tests).
		return &badRequest{kind: "FileFault", detail: "<file>" + esc(file) + "</file>",
			msg: "Error caused by file " + file + ": " + why}
	}
	if sd == nil {
		return nil, 0, fileFault("change tracking was not active on this disk when the snapshot was taken")
	}
	if sd.state == nil {
		return nil, 0, fileFault("the disk could not be read at the snapshot: " + sd.Error)
	}
	if *c.StartOffset < 0 || *c.StartOffset >= sd.state.capacity {
		return nil, 0, &badRequest{kind: "InvalidArgument", property: "startOffset", msg: "A specified parameter was not correct: startOffset"}
	}
	var from *diskState
	if c.ChangeID != "*" {
		t := tracks[c.This][int32(*c.DeviceKey)]
		if t != nil {
			from = t.states[c.ChangeID]
		}
		if from == nil {
			return nil, 0, fileFault("change id " + c.ChangeID + " is not known to this disk's tracking (another disk's, from before a reset, or made up)")
		}
	}
	areas, length := changedAreas(sd.state, from, *c.StartOffset)
	return areas, length, nil
}

// decodeCbtCall decodes a QueryChangedDiskAreas request strictly, as decodeSnapshotCall
// does (the WSDL's order: _this, snapshot?, deviceKey, startOffset, changeId); (nil, nil)
// for another method.
func decodeCbtCall(body []byte) (*cbtCall, error) {
	s := &strictDecoder{d: xml.NewDecoder(bytes.NewReader(body)), prefixes: map[string]string{}}
	c := &cbtCall{}
	if _, err := s.start(nsEnv, "Envelope"); err != nil {
		return nil, nil
	}
	t, err := s.next()
	if err != nil {
		return nil, nil
	}
	if st, ok := t.(xml.StartElement); ok && st.Name.Space == nsEnv && st.Name.Local == "Header" {
		if s.d.Skip() != nil {
			return nil, nil
		}
		if t, err = s.next(); err != nil {
			return nil, nil
		}
	}
	if st, ok := t.(xml.StartElement); !ok || st.Name.Local != "Body" {
		return nil, nil
	}
	t, err = s.next()
	if err != nil {
		return nil, nil
	}
	m, ok := t.(xml.StartElement)
	if !ok || m.Name.Local != "QueryChangedDiskAreas" {
		return nil, nil
	}
	if m.Name.Space != nsVim {
		return c, invalid("<%s> in %q, not urn:vim25", m.Name.Local, m.Name.Space)
	}
	moref := func(want string, out *string) func(xml.StartElement) error {
		return func(st xml.StartElement) error {
			kind := ""
			for _, a := range st.Attr {
				if a.Name.Space == "" && a.Name.Local == "type" {
					kind = a.Value
				}
			}
			if kind != want {
				return invalid("<%s> is of type %q, not %s", st.Name.Local, kind, want)
			}
			v, err := s.text(st)
			*out = strings.TrimSpace(v)
			return err
		}
	}
	long := func(out **int64) func(xml.StartElement) error {
		return func(st xml.StartElement) error {
			v, err := s.text(st)
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return invalid("<%s>%s</%s> is not an xsd:long", st.Name.Local, v, st.Name.Local)
			}
			*out = &n
			return nil
		}
	}
	fields := []field{
		{name: "_this", read: moref("VirtualMachine", &c.This)},
		{name: "snapshot", optional: true, read: moref("VirtualMachineSnapshot", &c.Snapshot)},
		{name: "deviceKey", read: func(st xml.StartElement) error { return s.integer(st, &c.DeviceKey) }},
		{name: "startOffset", read: long(&c.StartOffset)},
		{name: "changeId", read: func(st xml.StartElement) error {
			v, err := s.text(st)
			c.ChangeID = v
			return err
		}},
	}
	if err := s.sequence(m.Name.Local, fields); err != nil {
		return c, err
	}
	return c, nil
}

func recordCbt(c cbtCall) {
	cbtMu.Lock()
	cbtLog = append(cbtLog, c)
	cbtMu.Unlock()
}

var taskRef = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)

// cbtCalls wraps the handler: answers QueryChangedDiskAreas, records each snapshot's
// disk states once the simulator made it (before the client hears of it, so the
// snapshot's config already carries the change ids), and forgets the tracking of a VM
// a ReconfigVM_Task switched it off on.
func cbtCalls(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/sdk" {
			inner.ServeHTTP(w, r)
			return
		}
		body, err := ioutil.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = ioutil.NopCloser(bytes.NewReader(body))
		switch {
		case bytes.Contains(body, []byte("QueryChangedDiskAreas")):
			c, err := decodeCbtCall(body)
			if c == nil {
				inner.ServeHTTP(w, r)
				return
			}
			if err != nil {
				bad := err.(*badRequest)
				c.Answer = bad.kind + ": " + bad.msg
				recordCbt(*c)
				writeFault(w, bad.kind, bad.msg, "")
				return
			}
			areas, length, bad := queryChangedDiskAreas(c)
			if bad != nil {
				c.Answer = bad.kind + ": " + bad.msg
				recordCbt(*c)
				detail := bad.detail
				if bad.property != "" {
					detail += "<invalidProperty>" + esc(bad.property) + "</invalidProperty>"
				}
				writeFault(w, bad.kind, bad.msg, detail)
				return
			}
			c.Answer = fmt.Sprintf("%d areas, length %d", len(areas), length)
			recordCbt(*c)
			var b strings.Builder
			b.WriteString(xml.Header + `<soapenv:Envelope xmlns:soapenv="` + nsEnv + `" xmlns:xsi="` + nsXSI + `"><soapenv:Body>` +
				`<QueryChangedDiskAreasResponse xmlns="urn:vim25"><returnval>`)
			fmt.Fprintf(&b, "<startOffset>%d</startOffset><length>%d</length>", *c.StartOffset, length)
			for _, a := range areas {
				fmt.Fprintf(&b, "<changedArea><start>%d</start><length>%d</length></changedArea>", a.Start, a.Length)
			}
			b.WriteString(`</returnval></QueryChangedDiskAreasResponse></soapenv:Body></soapenv:Envelope>`)
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			_, _ = io.WriteString(w, b.String())
		case bytes.Contains(body, []byte("CreateSnapshot")):
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			if m := taskRef.FindSubmatch(rec.Body.Bytes()); m != nil && rec.Code == http.StatusOK {
				if t, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "Task", Value: string(m[1])}).(*simulator.Task); ok {
					var snap, vm *types.ManagedObjectReference
					simulator.Map.WithLock(t, func() {
						if s, ok := t.Info.Result.(types.ManagedObjectReference); ok && t.Info.State == types.TaskInfoStateSuccess {
							snap = &s
						}
						vm = t.Info.Entity
					})
					if snap != nil && vm != nil {
						recordSnapshot(*vm, *snap)
					}
				}
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		case bytes.Contains(body, []byte("ReconfigVM_Task")):
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			resetUntracked()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		default:
			inner.ServeHTTP(w, r)
		}
	})
}

// cbtReport is what GET /cbt?vm= answers: the VM's changeTrackingEnabled as the
// simulator has it, its disks (device key -> file), each tracked disk's UUID and
// change ids, and per snapshot the change id each disk got.
func cbtReport(vm *simulator.VirtualMachine) interface{} {
	var enabled *bool
	devices := map[string]string{}
	simulator.Map.WithLock(vm, func() {
		if e := vm.Config.ChangeTrackingEnabled; e != nil {
			v := *e
			enabled = &v
		}
		for _, d := range vm.Config.Hardware.Device {
			if disk, ok := d.(*types.VirtualDisk); ok {
				if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					devices[strconv.Itoa(int(disk.Key))] = b.GetVirtualDeviceFileBackingInfo().FileName
				}
			}
		}
	})
	cbtMu.Lock()
	defer cbtMu.Unlock()
	disks := map[string]interface{}{}
	for key, t := range tracks[vm.Self.Value] {
		ids := []string{}
		for id := range t.states {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		disks[strconv.Itoa(int(key))] = map[string]interface{}{"uuid": t.uuid, "file": t.file, "ids": ids, "count": t.n}
	}
	snaps := map[string]interface{}{}
	for ref, byKey := range snapCbt {
		if s, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: ref}).(*simulator.VirtualMachineSnapshot); ok && s.Vm == vm.Self {
			m := map[string]*snapDisk{}
			for k, sd := range byKey {
				m[strconv.Itoa(int(k))] = sd
			}
			snaps[ref] = m
		}
	}
	return map[string]interface{}{"changeTrackingEnabled": enabled, "devices": devices, "disks": disks, "snapshots": snaps}
}

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
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim tests/vcsim/main.go
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
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
	"os/signal"
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
	server.Config.Handler = snapshotCalls(server.Config.Handler, *noEx)

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
//	GET  /calls?method=METHOD           JSON list of the CreateSnapshotEx_Task or
//	                                    CreateSnapshot_Task requests received, decoded
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
	mux.HandleFunc("/calls", func(w http.ResponseWriter, r *http.Request) {
		method := r.URL.Query().Get("method")
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

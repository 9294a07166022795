// vcsim launcher for vmsnapfs' vSphere tests: govmomi's vCenter simulator (Debian's
// golang-github-vmware-govmomi-dev ships the library but no binary) on 127.0.0.1, over
// HTTP or HTTPS with the simulator's self-signed certificate. Prints one JSON line
// (URL, datastore name -> host folder, VM names) so a test can place disk chains in the
// datastore folders, then serves until SIGTERM/SIGINT.
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim tests/vcsim/main.go
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
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
	flag.Parse()

	model := simulator.VPX()
	model.Cluster = 0
	model.ClusterHost = 0
	model.Machine = *vms
	model.Folder = *folders
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	if *useTLS {
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned()}}
	}
	server := model.Service.NewServer()

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

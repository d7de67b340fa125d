package vmlab_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/internal/testlab"
	"github.com/weftnet/weft/internal/vmlab"
)

// TestKernelPackagesInVM boots Debian's kernel and runs every test of each
// package in vmlab.Packages there.
func TestKernelPackagesInVM(t *testing.T) {
	vmlab.SkipUnlessAvailable(t) // and in the VM itself
	spec := vmlab.Spec{
		// Loaded at boot; the rest (crypto, nf_tables) load on demand.
		Modules: []string{"dummy", "8021q", "ipvlan", "macvlan", "vxlan", "veth", "bridge", "br_netfilter", "xfrm_user", "esp4", "xt_policy", "xt_u32"},
		// The testlab helpers (ip netns exec) and weft's firewall need them.
		HostCommands: []string{"ip", "bridge", "iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"},
	}
	for _, pkg := range vmlab.Packages {
		t.Run(path.Base(pkg), func(t *testing.T) {
			dir, err := vmlab.PackageDir(t.Context(), pkg)
			if err != nil {
				t.Fatal(err)
			}
			vmlab.RunPackage(t, dir, spec)
		})
	}
}

// TestRunBinary checks what Run promises a binary: its arguments verbatim,
// its environment and working directory, its output (stdout and stderr,
// a last line without newline) and its exit code.
func TestRunBinary(t *testing.T) {
	vmlab.SkipUnlessAvailable(t)
	script := `echo "$WEFT_IN_VM $FOO $1"; pwd; echo err >&2; printf 'no newline'; exit 3`
	res, err := vmlab.Run(t.Context(), vmlab.Spec{
		Binary: "/bin/busybox", // static, like a CGO_ENABLED=0 test binary
		Args:   []string{"sh", "-c", script, "sh", "it's an arg"},
		Env:    []string{"FOO=a b"},
		Dir:    "/some/dir",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s, initramfs %.1f MB: %v", res.Kernel, float64(res.InitramfsBytes)/1e6, res.Timing)
	if want := "1 a b it's an arg\n/some/dir\nerr\nno newline\n"; res.Output != want {
		t.Errorf("output %q, want %q", res.Output, want)
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", res.ExitCode)
	}
}

// TestRunRootTmpfs checks that RootTmpfs gives the guest a root that
// pivot_root can leave, as runc needs, and that without it the initramfs
// cannot: the control that shows the check can fail. A program copied with
// Programs runs from either root.
func TestRunRootTmpfs(t *testing.T) {
	vmlab.SkipUnlessAvailable(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip to copy in as a program")
	}
	script := `unshare -m sh -c 'mount --make-rprivate / && mkdir -p /mnt/new && mount -t tmpfs t /mnt/new && mkdir /mnt/new/old && cd /mnt/new && pivot_root . old && echo pivoted'; /opt/sbin/ip -V >/dev/null && echo program`
	for _, rootTmpfs := range []bool{true, false} {
		res, err := vmlab.Run(t.Context(), vmlab.Spec{
			Binary:    "/bin/busybox",
			Args:      []string{"sh", "-c", script},
			Programs:  map[string]string{"/opt/sbin/ip": ip},
			RootTmpfs: rootTmpfs,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("RootTmpfs %v: initramfs %.1f MB: %v", rootTmpfs, float64(res.InitramfsBytes)/1e6, res.Timing)
		if pivoted := strings.Contains(res.Output, "pivoted"); pivoted != rootTmpfs || !strings.Contains(res.Output, "program") {
			t.Errorf("RootTmpfs %v: output %q; want pivot_root to work only on the tmpfs root, and the program to run", rootTmpfs, res.Output)
		}
	}
}

// TestRunBootFailure checks that a VM that never runs the binary is an
// error that shows the console.
func TestRunBootFailure(t *testing.T) {
	vmlab.SkipUnlessAvailable(t)
	_, err := vmlab.Run(t.Context(), vmlab.Spec{
		Binary:     "/bin/busybox",
		KernelArgs: []string{"rdinit=/nonexistent"}, // no init: the kernel panics
	})
	var be *vmlab.BootError
	if !errors.As(err, &be) {
		t.Fatalf("Run = %v, want a BootError", err)
	}
	if !strings.Contains(be.Console, "Kernel panic") || !strings.Contains(err.Error(), "serial console") {
		t.Errorf("the error does not show the panic on the console:\n%v", err)
	}
}

// TestRunTimeout checks that the context bounds the VM.
func TestRunTimeout(t *testing.T) {
	vmlab.SkipUnlessAvailable(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := vmlab.Run(ctx, vmlab.Spec{Binary: "/bin/busybox", Args: []string{"sleep", "600"}})
	var be *vmlab.BootError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "killed") {
		t.Fatalf("Run = %v, want a BootError saying the VM was killed", err)
	}
	if d := time.Since(start); d > 13*time.Second {
		t.Errorf("Run returned %v after the context ended", d-3*time.Second)
	}
}

// TestVMLinks makes the links the CI kernel lacks: dummy, 802.1q VLAN and
// ipvlan in each mode.
func TestVMLinks(t *testing.T) {
	vmlab.RequireVM(t)
	parent := addLink(t, &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "dum0"}})

	vlan := addLink(t, &netlink.Vlan{
		LinkAttrs: netlink.LinkAttrs{Name: "dum0.10", ParentIndex: parent.Attrs().Index},
		VlanId:    10,
	})
	if v, ok := vlan.(*netlink.Vlan); !ok || v.VlanId != 10 {
		t.Errorf("dum0.10 reads back as %#v, want an 802.1q link with id 10", vlan)
	}

	for _, mode := range []netlink.IPVlanMode{netlink.IPVLAN_MODE_L2, netlink.IPVLAN_MODE_L3, netlink.IPVLAN_MODE_L3S} {
		name := "ipvl" + ipvlanModeName(mode)
		l := addLink(t, &netlink.IPVlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index},
			Mode:      mode,
		})
		if v, ok := l.(*netlink.IPVlan); !ok || v.Mode != mode {
			t.Errorf("%s reads back as %#v, want ipvlan mode %s", name, l, ipvlanModeName(mode))
		}
	}
}

// TestVMIPVLANPing pings between two namespaces whose ipvlan links share a
// parent, in each ipvlan mode.
func TestVMIPVLANPing(t *testing.T) {
	vmlab.RequireVM(t)
	for i, mode := range []netlink.IPVlanMode{netlink.IPVLAN_MODE_L2, netlink.IPVLAN_MODE_L3, netlink.IPVLAN_MODE_L3S} {
		t.Run(ipvlanModeName(mode), func(t *testing.T) {
			parent := addLink(t, &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "ipvp" + ipvlanModeName(mode)}})
			pingPair(t, "ipvl"+ipvlanModeName(mode), byte(10+i), func(name string) netlink.Link {
				return &netlink.IPVlan{
					LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index},
					Mode:      mode,
				}
			})
		})
	}
}

// TestVMMacvlanBridgePing pings between two namespaces whose macvlan links
// (bridge mode) share a parent.
func TestVMMacvlanBridgePing(t *testing.T) {
	vmlab.RequireVM(t)
	parent := addLink(t, &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "mvp0"}})
	pingPair(t, "mvl", 20, func(name string) netlink.Link {
		return &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index},
			Mode:      netlink.MACVLAN_MODE_BRIDGE,
		}
	})
}

// TestVMESP pings between two namespaces over a veth pair whose traffic
// xfrm policies require to be ESP (AES-GCM, transport mode), and checks the
// SAs counted the packets.
func TestVMESP(t *testing.T) {
	vmlab.RequireVM(t)
	a, b := testlab.NewNS(t), testlab.NewNS(t)
	ipA, ipB := net.IPv4(10, 30, 0, 1), net.IPv4(10, 30, 0, 2)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "espa0"}, PeerName: "espb0", PeerNamespace: netlink.NsFd(b.Handle())}
	if err := a.NL.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	up(t, a, "espa0", ipA)
	up(t, b, "espb0", ipB)

	key := bytes.Repeat([]byte{0x42}, 20) // AES-128 key + 4-byte salt
	sa := func(src, dst net.IP, spi int) *netlink.XfrmState {
		return &netlink.XfrmState{
			Src: src, Dst: dst, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT,
			Spi: spi, Reqid: spi,
			Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key, ICVLen: 128},
		}
	}
	policy := func(src, dst net.IP, dir netlink.Dir, spi int) *netlink.XfrmPolicy {
		return &netlink.XfrmPolicy{
			Src: &net.IPNet{IP: src, Mask: net.CIDRMask(32, 32)}, Dst: &net.IPNet{IP: dst, Mask: net.CIDRMask(32, 32)},
			Dir:   dir,
			Tmpls: []netlink.XfrmPolicyTmpl{{Src: src, Dst: dst, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT, Reqid: spi}},
		}
	}
	for _, side := range []struct {
		ns       *testlab.NS
		me, peer net.IP
		out, in  int
	}{{a, ipA, ipB, 0x100, 0x200}, {b, ipB, ipA, 0x200, 0x100}} {
		h := side.ns.NL
		for _, s := range []*netlink.XfrmState{sa(side.me, side.peer, side.out), sa(side.peer, side.me, side.in)} {
			if err := h.XfrmStateAdd(s); err != nil {
				t.Fatalf("add ESP state in %s: %v", side.ns.Name, err)
			}
		}
		for _, p := range []*netlink.XfrmPolicy{policy(side.me, side.peer, netlink.XFRM_DIR_OUT, side.out), policy(side.peer, side.me, netlink.XFRM_DIR_IN, side.in)} {
			if err := h.XfrmPolicyUpdate(p); err != nil {
				t.Fatalf("add xfrm policy in %s: %v", side.ns.Name, err)
			}
		}
	}
	ping(t, a, ipB)

	states, err := b.NL.XfrmStateList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Statistics.Packets == 0 {
			t.Errorf("SA spi %#x in %s counted no packets: ping did not go through ESP", s.Spi, b.Name)
		}
	}
}

// TestVMTestlab runs the project's own namespace helpers in the VM: they
// need iproute2's ip (ip netns exec) and iptables, which the host half
// copies in.
func TestVMTestlab(t *testing.T) {
	vmlab.RequireVM(t)
	testlab.RequireCommand(t, "iptables")
	a, b := testlab.NewNS(t), testlab.NewNS(t)
	testlab.Wire(t, a, "wa", b, "wb")
	a.MustRun(t, "ip", "addr", "add", "10.40.0.1/24", "dev", "wa")
	b.MustRun(t, "ip", "addr", "add", "10.40.0.2/24", "dev", "wb")
	a.MustRun(t, "ping", "-c", "1", "-W", "2", "10.40.0.2")
	a.MustRun(t, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wa", "-j", "MASQUERADE")
	out := a.MustRun(t, "iptables", "-t", "nat", "-S", "POSTROUTING")
	if !strings.Contains(out, "MASQUERADE") {
		t.Errorf("iptables -S shows no MASQUERADE rule:\n%s", out)
	}
}

// addLink adds l in the VM's root namespace, brings it up and returns it as
// the kernel reports it.
func addLink(t *testing.T, l netlink.Link) netlink.Link {
	t.Helper()
	root, err := nl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	name := l.Attrs().Name
	if err := root.LinkAdd(l); err != nil {
		t.Fatalf("add %s link %s: %v", l.Type(), name, err)
	}
	t.Cleanup(func() {
		root, err := nl.New()
		if err == nil {
			err = root.LinkDel(l)
			root.Close()
		}
		if err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	})
	got, err := root.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.LinkSetUp(got); err != nil {
		t.Fatalf("up %s: %v", name, err)
	}
	return got
}

// pingPair makes two links with mk (NAME1, NAME2 on one parent), moves them
// into two new namespaces as 10.N.0.1/24 and 10.N.0.2/24 and pings.
func pingPair(t *testing.T, prefix string, n byte, mk func(name string) netlink.Link) {
	t.Helper()
	root, err := nl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var spaces [2]*testlab.NS
	for i := range spaces {
		name := prefix + string(rune('1'+i))
		spaces[i] = testlab.NewNS(t)
		l := mk(name)
		l.Attrs().Namespace = netlink.NsFd(spaces[i].Handle())
		if err := root.LinkAdd(l); err != nil {
			t.Fatalf("add %s link %s: %v", l.Type(), name, err)
		}
		up(t, spaces[i], name, net.IPv4(10, n, 0, byte(1+i)))
	}
	ping(t, spaces[0], net.IPv4(10, n, 0, 2))
}

// up gives link the address ip/24 and brings it up.
func up(t *testing.T, n *testlab.NS, link string, ip net.IP) {
	t.Helper()
	l, err := n.NL.LinkByName(link)
	if err != nil {
		t.Fatalf("%s in %s: %v", link, n.Name, err)
	}
	if err := n.NL.AddrReplace(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatalf("address %s on %s in %s: %v", ip, link, n.Name, err)
	}
	if err := n.NL.LinkSetUp(l); err != nil {
		t.Fatalf("up %s in %s: %v", link, n.Name, err)
	}
}

// ping sends one echo request from the namespace with busybox ping.
func ping(t *testing.T, n *testlab.NS, ip net.IP) {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+n.Path(), "ping", "-c", "1", "-W", "3", ip.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", ip, n.Name, err, out)
	}
}

func ipvlanModeName(m netlink.IPVlanMode) string {
	return map[netlink.IPVlanMode]string{netlink.IPVLAN_MODE_L2: "l2", netlink.IPVLAN_MODE_L3: "l3", netlink.IPVLAN_MODE_L3S: "l3s"}[m]
}

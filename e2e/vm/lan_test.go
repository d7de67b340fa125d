package vm

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/weftnet/weft/internal/lab"
)

// The LAN of the ipvlan and VLAN scenarios is a second segment: the bridge
// lanBridge in the lab's switch namespace, into which hosts plug a second
// NIC named eth1, so the README's examples run as written (parent=eth1).
// On its untagged subnet 192.168.1.0/24 the plain host "router" is
// 192.168.1.1, the Docker host h1 is 192.168.1.11 and the plain host "pc"
// is 192.168.1.2.
const (
	lanBridge  = "lan0"
	routerAddr = "192.168.1.1"
	pcAddr     = "192.168.1.2"
	h1LANAddr  = "192.168.1.11"
)

// lanLab is the Docker host and the two LAN machines.
type lanLab struct {
	h1         *lab.DockerHost
	router, pc *lab.Host
}

var (
	lanOnce sync.Once
	theLANs *lanLab
	lanErr  error
)

// theLAN makes the LAN on first use.
func theLAN(t *testing.T) *lanLab {
	t.Helper()
	lanOnce.Do(func() {
		l := &lanLab{}
		if l.h1, _, lanErr = getDockerHost("h1"); lanErr != nil {
			return
		}
		if l.router, lanErr = theLab.AddHost("router"); lanErr != nil {
			return
		}
		if l.pc, lanErr = theLab.AddHost("pc"); lanErr != nil {
			return
		}
		for _, cmd := range [][]string{{"ip", "link", "add", lanBridge, "type", "bridge"}, {"ip", "link", "set", lanBridge, "up"}} {
			if _, lanErr = theLab.RunSwitch(context.Background(), cmd...); lanErr != nil {
				return
			}
		}
		for _, p := range []struct {
			h    *lab.Host
			addr string
		}{{l.h1.Host, h1LANAddr}, {l.router, routerAddr}, {l.pc, pcAddr}} {
			if lanErr = plugLAN(p.h, p.addr); lanErr != nil {
				return
			}
		}
		theLANs = l
	})
	if lanErr != nil {
		t.Fatalf("LAN: %v", lanErr)
	}
	return theLANs
}

// plugLAN gives h a NIC eth1 on the LAN with address addr/24.
func plugLAN(h *lab.Host, addr string) error {
	c := context.Background()
	port := "l-" + h.Name
	for _, cmd := range [][]string{
		{"ip", "link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", h.NetNS},
		{"ip", "link", "set", port, "master", lanBridge},
		{"ip", "link", "set", port, "up"},
	} {
		if _, err := theLab.RunSwitch(c, cmd...); err != nil {
			return err
		}
	}
	for _, cmd := range [][]string{{"ip", "addr", "add", addr + "/24", "dev", "eth1"}, {"ip", "link", "set", "eth1", "up"}} {
		if _, err := h.Run(c, cmd...); err != nil {
			return err
		}
	}
	return nil
}

// vlanLink adds the 802.1q link eth1.VID with address addr/24 to lab host h
// and removes it at cleanup.
func vlanLink(t *testing.T, h *lab.Host, vid, addr string) {
	t.Helper()
	link := "eth1." + vid
	if _, err := h.Run(ctx(t), "ip", "link", "show", link); err != nil {
		mustRun(t, h, "ip", "link", "add", "link", "eth1", "name", link, "type", "vlan", "id", vid)
		mustRun(t, h, "ip", "link", "set", link, "up")
		t.Cleanup(func() { h.Run(context.Background(), "ip", "link", "del", link) })
	}
	mustRun(t, h, "ip", "addr", "add", addr+"/24", "dev", link)
}

// linkExists reports whether h has a link of that name.
func linkExists(t *testing.T, h *lab.Host, name string) bool {
	t.Helper()
	out := mustRun(t, h, "ip", "-o", "link", "show")
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0] == name {
			return true
		}
	}
	return false
}

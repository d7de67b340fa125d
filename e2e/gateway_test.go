package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// TestGatewayTakeoverAfterPluginRestart is dockerd's known issue in the
// README ("Known issues"). Since Docker 29, dockerd's proxy for remote network
// drivers remembers which endpoints are containers' gateways only in memory
// (daemon/libnetwork/drivers/remote/driver.go in moby), and a plugin restart
// gives it a new, empty memory. `docker network connect` of a network that
// takes over as a running container's gateway then fails inside dockerd,
// which must tell the old gateway endpoint that it no longer is one and no
// longer knows it: "remote network driver: endpoint ... not found". weft is
// never asked. Restarting the container is the workaround.
//
// The test shows that the error is dockerd's own, so that a dockerd that no
// longer fails makes it fail, asking for the README and the test to change.
// On Docker 20.10 the same steps work, and must.
func TestGatewayTakeoverAfterPluginRestart(t *testing.T) {
	requireLab(t)
	before := hostState(t)
	t.Cleanup(func() { // runs last, once containers and networks are gone
		if after := hostState(t); after != before {
			t.Errorf("the test left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	// weft's debug log names every call it answers with its endpoint id.
	docker(t, host, "plugin", "disable", "-f", Plugin)
	docker(t, host, "plugin", "set", Plugin, "LOG_LEVEL=debug")
	docker(t, host, "plugin", "enable", Plugin)
	t.Cleanup(func() {
		bg := context.Background()
		host.Docker(bg, "plugin", "disable", "-f", Plugin)
		host.Docker(bg, "plugin", "set", Plugin, "LOG_LEVEL=info")
		host.Docker(bg, "plugin", "enable", Plugin)
	})
	// dockerd makes the endpoint whose network's name sorts first the
	// gateway (all else equal): "a-new" takes over from "b-old".
	old, takeover := netName(t, "b-old"), netName(t, "a-new")
	network(t, old, "--subnet", "10.43.0.0/24")
	network(t, takeover, "--subnet", "10.44.0.0/24")
	// side sorts last: it never becomes the gateway. (Networks first: the
	// containers on them go before them at cleanup.)
	side := netName(t, "c-side")
	network(t, side, "--subnet", "10.45.0.0/24")
	c := netName(t, "c")
	run(t, c, "--network", old)

	// Control: before the plugin restarts, the connect works and is a
	// takeover: the container's default route moves to the new network,
	// and dockerd tells weft that the old endpoint is no longer the gateway.
	ctl := netName(t, "ctl")
	run(t, ctl, "--network", old)
	ctlOldEP := endpointID(t, ctl, old)
	from := logSize(t)
	docker(t, host, "network", "connect", takeover, ctl)
	gatewayIs(t, ctl, "10.44.0.1")
	eventually(t, 10*time.Second, "weft is told the old endpoint is no longer the gateway", func() error {
		if !hasCall(logSince(t, from), revoke, "endpoint="+ctlOldEP[:12]) {
			return fmt.Errorf("no %s for endpoint %s in weft's debug log", revoke, ctlOldEP[:12])
		}
		return nil
	})

	oldEP := endpointID(t, c, old)
	newNet := docker(t, host, "network", "inspect", "-f", "{{.Id}}", takeover)
	if _, _, err := host.KillPlugin(ctx(t), Plugin); err != nil {
		t.Fatal(err)
	}
	// dockerd has taken the restarted plugin back once a container can
	// join through it.
	eventually(t, 30*time.Second, "a container joins after the plugin restarted", func() error {
		_, err := host.Docker(context.Background(), "run", "--rm", "--network", old, lab.Image, "true")
		return err
	})

	from = logSize(t)
	_, err := host.Docker(ctx(t), "network", "connect", takeover, c)
	if !engineAtLeast(29, 0) {
		if err != nil {
			t.Fatalf("on Docker %s, connecting a network that takes over as the gateway after a plugin restart failed: %v", engine.Version, err)
		}
		gatewayIs(t, c, "10.44.0.1")
		return
	}
	if err == nil {
		t.Fatalf("Docker %s no longer fails `docker network connect` of a network that takes over as a container's gateway after the plugin restarted: "+
			"dockerd's remote driver proxy is fixed. Remove the known issue from the README and make this test check that the connect works on every engine.", engine.Version)
	}
	// dockerd's proxy words it so, about the old gateway endpoint (weft's
	// own message for an endpoint it does not know is "endpoint ... is not
	// known to weft").
	want := "remote network driver: endpoint " + oldEP + " not found"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("the connect failed, but not with dockerd's %q: %v", want, err)
	}
	// weft answered the connect's calls for the new endpoint up to dockerd's
	// rollback, which deletes it; everything weft was asked in between is
	// logged before that.
	var weftLog string
	eventually(t, 10*time.Second, "weft logs the rollback of the failed connect", func() error {
		weftLog = logSince(t, from)
		if !hasCall(weftLog, "DeleteEndpoint", "network="+newNet[:12]) {
			return fmt.Errorf("no DeleteEndpoint for network %s in weft's debug log since the connect:\n%s", newNet[:12], probe.Tail(weftLog, 40))
		}
		return nil
	})
	// Unlike in the control, dockerd never told weft about the old gateway,
	// and weft refused nothing.
	for _, call := range []string{revoke, "ProgramExternalConnectivity"} {
		if hasCall(weftLog, call, "endpoint="+oldEP[:12]) {
			t.Errorf("weft was asked %s for the old gateway endpoint %s: the failure may be weft's; its log since the connect:\n%s", call, oldEP[:12], probe.Tail(weftLog, 40))
		}
	}
	for _, line := range strings.Split(weftLog, "\n") {
		if strings.Contains(line, "msg=refused") || strings.Contains(line, "msg=failed") {
			t.Errorf("weft refused a call during the connect: %s", line)
		}
	}

	// The container is as it was, and a network that does not take over
	// as the gateway connects: only the takeover fails.
	docker(t, host, "network", "connect", side, c)
	gatewayIs(t, c, "10.43.0.1")
	reaches(t, c, "10.45.0.1")
	reaches(t, c, ext.Addr.String())

	// The workaround: a container restart joins its networks again, and
	// then the connect takes over as the gateway.
	docker(t, host, "restart", "-t", "1", c)
	docker(t, host, "network", "connect", takeover, c)
	gatewayIs(t, c, "10.44.0.1")
	reaches(t, c, ext.Addr.String())
}

// revoke is the call by which dockerd tells a driver that an endpoint is no
// longer its container's gateway.
const revoke = "RevokeExternalConnectivity"

// endpointID is the id of container's endpoint on network.
func endpointID(t *testing.T, container, network string) string {
	t.Helper()
	return docker(t, host, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").EndpointID}}`, container)
}

// gatewayIs asserts the container's IPv4 default route goes via gw.
func gatewayIs(t *testing.T, container, gw string) {
	t.Helper()
	route, err := sh(t, container, "ip -4 route show default")
	if err != nil || !strings.Contains(route, "via "+gw+" ") {
		t.Errorf("%s's default route is %q (%v), want one via %s", container, route, err, gw)
	}
}

// hasCall reports whether a weft debug line in log says it answered call
// with the given field (e.g. "network=0123456789ab").
func hasCall(log, call, field string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "call="+call+" ") && strings.Contains(l, field) {
			return true
		}
	}
	return false
}

// logSize is the size of h1's dockerd log now.
func logSize(t *testing.T) int64 {
	t.Helper()
	st, err := os.Stat(host.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// logSince returns what h1's dockerd (and the plugins, whose output it
// logs) wrote to its log after offset.
func logSince(t *testing.T, offset int64) string {
	t.Helper()
	f, err := os.Open(host.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// Tests of what an operator does around the plugin: install from a registry
// on a host that never had weft, upgrade with containers running, and a
// damaged state database.

// oldRelease is the last commit whose store has schema 1 (and whose state
// already lives in the plugin's propagated mount): the version an upgrade
// starts from. The clone must have history (`git clone`, not --depth 1).
const oldRelease = "8e4062c"

var (
	registryOnce sync.Once
	sharedReg    *lab.Registry
	registryErr  error
)

// theRegistry is the lab's registry, started once for the suite on its own
// plain lab host.
func theRegistry(t *testing.T) *lab.Registry {
	t.Helper()
	registryOnce.Do(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sharedReg, registryErr = startRegistry(c)
	})
	if registryErr != nil {
		t.Fatalf("registry: %v", registryErr)
	}
	return sharedReg
}

func startRegistry(ctx context.Context) (*lab.Registry, error) {
	h, err := theLab.AddHost("registry")
	if err != nil {
		return nil, err
	}
	return h.StartRegistry(ctx, 5000)
}

// publish builds the plugin ref from dir on h and pushes it, keeping no
// local copy: a publisher's side.
func publish(ctx context.Context, h *lab.DockerHost, ref, dir string) error {
	for _, args := range [][]string{
		{"plugin", "create", ref, dir},
		{"plugin", "push", ref},
		{"plugin", "rm", ref},
	} {
		if _, err := h.Docker(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// buildRelease builds the plugin directory of an earlier commit, from the
// repository's own history.
func buildRelease(t *testing.T, commit string) string {
	t.Helper()
	dir := t.TempDir()
	archive := exec.Command("git", "-C", "..", "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var archErr strings.Builder
	archive.Stderr = &archErr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s (the repository must be a full clone): %v: %s", commit, err, archErr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatal(err)
	}
	mk := exec.Command("make", "-C", dir, "plugin", "VERSION="+commit)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("build weft %s: %v\n%s", commit, err, out)
	}
	return filepath.Join(dir, "build", "plugin")
}

// freshDockerHost adds a Docker host that has never seen weft: its /var/lib
// is an empty tmpfs, so no /var/lib/weft exists for a plugin to mount.
func freshDockerHost(t *testing.T, name string) *lab.DockerHost {
	t.Helper()
	h, err := theLab.AddDockerHost(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(ctx(t), "mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/var/lib"); err != nil {
		t.Fatal(err)
	}
	if out, _ := h.Run(ctx(t), "ls", "-A", "/var/lib"); strings.TrimSpace(out) != "" {
		t.Fatalf("/var/lib of the fresh host is not empty: %s", out)
	}
	return h
}

// schemaOf reads the schema version of the plugin's state database on h.
func schemaOf(t *testing.T, h *lab.DockerHost) string {
	t.Helper()
	dir, err := h.PluginStateDir(ctx(t), Plugin)
	if err != nil {
		t.Fatal(err)
	}
	// weft holds the file's lock while it runs: read a copy (weft is idle,
	// and every change it made is committed before it answered dockerd).
	raw, err := os.ReadFile(filepath.Join(dir, "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "weft.db")
	if err := os.WriteFile(cp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(cp, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("meta")); b != nil {
			v = string(b.Get([]byte("schema")))
		}
		return nil
	})
	return v
}

// served fetches http://addr:port/ from the lab's outside host until it
// answers with want (a server takes a moment to listen after `docker run`).
func served(t *testing.T, addr string, port int, want string) bool {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		out, _ := ext.Run(ctx(t), "sh", "-c", fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 3 %s %d`, addr, port))
		if strings.Contains(out, want) {
			return true
		}
	}
	return false
}

// TestUpgradeThroughRegistry: the operator's whole path on a host that has
// never had weft. `docker plugin install` from a registry with nothing
// prepared; a network with two containers, one publishing a port; then
// `docker plugin disable -f`, `docker plugin upgrade` to the current weft
// (its store has a newer schema) and `docker plugin enable`, with the
// containers running throughout. They keep talking and serving, weft still
// knows the network, and the store was migrated.
func TestUpgradeThroughRegistry(t *testing.T) {
	requireLab(t)
	reg := theRegistry(t)
	oldDir := buildRelease(t, oldRelease)
	h := freshDockerHost(t, "upgrade")
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	oldRef, newRef := reg.Addr+"/weft:"+oldRelease, reg.Addr+"/weft:current"
	if err := publish(c, h, oldRef, oldDir); err != nil {
		t.Fatal(err)
	}
	if err := publish(c, h, newRef, pluginDir()); err != nil {
		t.Fatal(err)
	}
	docker(t, h, "plugin", "install", "--grant-all-permissions", "--alias", Plugin, oldRef)
	if v := schemaOf(t, h); v != "1" {
		t.Fatalf("the old release's store has schema %q, want 1: the test does not start from the old schema", v)
	}

	const net = "upgrade-n"
	docker(t, h, "network", "create", "-d", Plugin, "--ipam-driver", Plugin, "--subnet", "10.61.0.0/24", net)
	web := `mkdir -p /www && echo hello-upgrade > /www/index.html && exec httpd -f -p 80 -h /www`
	docker(t, h, "run", "-d", "--name", "up-web", "--stop-timeout", "1", "--network", net, "-p", "8090:80", lab.Image, "sh", "-c", web)
	docker(t, h, "run", "-d", "--name", "up-client", "--stop-timeout", "1", "--network", net, lab.Image, "sleep", "3600")
	talks := func(when string) {
		t.Helper()
		if r := pingFrom(t, h, "up-client", "up-web"); r != probe.Replied {
			t.Errorf("%s: the client cannot reach the web container: %s", when, r)
		}
		if !served(t, h.Addr.String(), 8090, "hello-upgrade") {
			t.Errorf("%s: the published port does not answer from outside the host", when)
		}
	}
	talks("before the upgrade")

	docker(t, h, "plugin", "disable", "-f", Plugin)
	talks("with the plugin disabled")
	// The CLI asks before it upgrades to another repository; the operator
	// answers yes, which is --skip-remote-check.
	docker(t, h, "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", Plugin, newRef)
	docker(t, h, "plugin", "enable", Plugin)
	talks("after the upgrade")

	if v := schemaOf(t, h); v != "2" {
		t.Errorf("store schema after the upgrade is %q, want 2", v)
	}
	// weft still knows the network: a new container joins it, with an
	// address of its own, and reaches the old ones.
	docker(t, h, "run", "-d", "--name", "up-new", "--stop-timeout", "1", "--network", net, lab.Image, "sleep", "3600")
	ips := map[string]string{}
	for _, name := range []string{"up-web", "up-client", "up-new"} {
		ip := containerIP(t, h, name)
		if other, dup := ips[ip]; dup {
			t.Errorf("%s got %s, the address of %s", name, ip, other)
		}
		ips[ip] = name
	}
	if r := pingFrom(t, h, "up-new", "up-web"); r != probe.Replied {
		t.Errorf("a container started after the upgrade cannot reach one from before: %s", r)
	}
	// The links weft made before schema 2 now carry its mark.
	if out, _ := h.Run(ctx(t), "ip", "-d", "link", "show", "type", "bridge"); !strings.Contains(out, "alias weft:") {
		t.Errorf("the network's bridge carries no weft mark after the upgrade:\n%s", out)
	}
	docker(t, h, "rm", "-f", "up-web", "up-client", "up-new")
	docker(t, h, "network", "rm", net)
	if out, _ := h.Run(ctx(t), "ip", "-o", "link", "show"); strings.Contains(out, "wf-") || strings.Contains(out, ": wh") {
		t.Errorf("weft links left after removing everything:\n%s", out)
	}
}

// TestDamagedStateDatabase: the state database is cut to 8 KiB (what the
// issue saw crash weft into a loop under dockerd) while a container runs.
// weft starts anyway, keeps the damaged file for the operator, says so in
// its log, and the running container keeps its network; new networks work.
func TestDamagedStateDatabase(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.62.0.0/24")
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net)
	reaches(t, net+"-a", net+"-b")
	dir, err := host.PluginStateDir(ctx(t), Plugin)
	if err != nil {
		t.Fatal(err)
	}
	docker(t, host, "plugin", "disable", "-f", Plugin)
	db := filepath.Join(dir, "weft.db")
	if err := os.Truncate(db, 8192); err != nil {
		t.Fatal(err)
	}
	docker(t, host, "plugin", "enable", Plugin)
	reaches(t, net+"-a", net+"-b")
	eventually(t, 20*time.Second, "weft logs the damaged database", func() error {
		if !strings.Contains(host.Logs(), "the state database was damaged") {
			return fmt.Errorf("no log line about the damaged database")
		}
		return nil
	})
	kept, _ := filepath.Glob(db + ".damaged-*")
	if len(kept) != 1 {
		t.Errorf("damaged file kept as %v, want one weft.db.damaged-* file", kept)
	}
	for _, k := range kept {
		os.Remove(k) // keep the next tests' state directory tidy
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	// The plugin serves: a new network and container work.
	net2 := netName(t, "m")
	network(t, net2, "--subnet", "10.63.0.0/24")
	run(t, net2+"-c", "--network", net2)
	reaches(t, net2+"-c", net2+"-c")
	// The operator removes what was lost: its containers (dockerd moves
	// their links back to the host) and the network. weft has no record of
	// them, but its mark proves the links its own: none is left behind, and
	// the rules kept for the old bridge go with it.
	lost := "wf-" + docker(t, host, "network", "inspect", "-f", "{{printf \"%.12s\" .Id}}", net)
	docker(t, host, "rm", "-f", net+"-a", net+"-b")
	docker(t, host, "network", "rm", net)
	if n := weftLinks(t); n != 1 {
		t.Errorf("%d weft veths on the host, want 1 (the new container's)", n)
	}
	if state := hostState(t); strings.Contains(state, lost) {
		t.Errorf("the lost network's bridge or rules stay after its removal:\n%s", state)
	}
}

// Command weft is the plugin daemon: one process serving Docker's network
// driver and IPAM protocols on one socket.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/driver"
	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/internal/sysctl"
	"github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/plugin"
	"github.com/weftnet/weft/portmap"
	"github.com/weftnet/weft/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	socket := flag.String("socket", envOr("WEFT_SOCKET", "/run/docker/plugins/weft.sock"), "unix socket to serve")
	stateDir := flag.String("state-dir", envOr("STATE_DIR", "/var/lib/weft"), "directory of the state database")
	sysctlRoot := flag.String("sysctl", envOr("SYSCTL_ROOT", defaultSysctlRoot()), "a writable /proc/sys holding the host's net/ tree")
	flag.Parse()

	log := logrus.New()
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	if lvl, err := logrus.ParseLevel(envOr("LOG_LEVEL", "info")); err == nil {
		log.SetLevel(lvl)
	} else {
		log.Warnf("LOG_LEVEL %q is not a log level (use debug, info, warning or error); using info", os.Getenv("LOG_LEVEL"))
	}
	if err := run(log, *socket, *stateDir, *sysctlRoot); err != nil {
		log.WithError(err).Fatal("weft stopped")
	}
}

func run(log *logrus.Logger, socket, stateDir, sysctlRoot string) error {
	// Listen before anything slow: dockerd gives up on a plugin that has no
	// socket after about 9.5 s. Calls wait until the state is restored.
	l, err := plugin.Listen(socket)
	if err != nil {
		return err
	}
	scope := envOr("SCOPE", plugin.ScopeLocal)
	if scope != plugin.ScopeLocal && scope != plugin.ScopeGlobal {
		// Listen anyway: a plugin that never listens leaves dockerd waiting.
		log.Errorf("SCOPE=%q is not a scope (use local or global: docker plugin set weft:latest SCOPE=global); using local", scope)
		scope = plugin.ScopeLocal
	}
	srv := plugin.NewServer(log, scope)
	httpSrv := plugin.NewHTTPServer(srv)
	go func() {
		if err := httpSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Fatal("serve")
		}
	}()
	log.WithFields(logrus.Fields{"version": version, "socket": socket, "scope": scope}).Info("weft listening")

	st, err := store.Open(filepath.Join(stateDir, "weft.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if rec := st.Recovery(); rec != nil {
		log.WithField("state", stateDir).Error(rec.String() + ". weft carries on with what it read back; running containers keep their network. " +
			"Networks whose records were lost are unknown to weft: remove and create them again (docker network rm, docker network create) when their containers can restart. " +
			"The damaged file is only kept for inspection; delete it when done.")
	}
	addrs, err := ipam.New(st, log.WithField("component", "ipam"))
	if err != nil {
		return fmt.Errorf("restore IPAM state: %w", err)
	}
	h, err := nl.New()
	if err != nil {
		return err
	}
	iptables, ip6tables, err := iptablesBackend(log)
	if err != nil {
		return err
	}
	fw := firewall.New(firewall.Config{IPTables: iptables, IP6Tables: ip6tables, Log: log.WithField("component", "firewall")})
	var proxies *portmap.Proxies
	if portmap.IPv6Listenable() {
		proxies = portmap.NewProxies(log.WithField("component", "proxy"))
	} else {
		log.Info("no IPv6 sockets on this host: host IPv6 ports of IPv4-only containers are not proxied")
	}
	drv, err := driver.New(driver.Config{
		Store: st, Netlink: h, Firewall: fw,
		Sysctls: sysctl.Writer{Root: sysctlRoot},
		Pools:   addrs,
		Proxies: proxies,
		Log:     log.WithField("component", "driver"),
	})
	if err != nil {
		return fmt.Errorf("restore network state: %w", err)
	}
	srv.SetBackends(drv, addrs)
	log.Info("weft ready")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	guardFirewall(ctx, fw, log.WithField("component", "firewall"))
	<-ctx.Done()
	log.Info("shutting down")
	// Networks and containers keep working without the daemon; only the
	// socket goes away.
	return httpSrv.Shutdown(context.Background())
}

// guardFirewall puts weft's firewall rules back whenever someone else
// changes them, until ctx ends (see firewall.Guard).
func guardFirewall(ctx context.Context, fw *firewall.Firewall, log logrus.FieldLogger) {
	changes, err := nl.WatchNFTables(ctx, "")
	if err != nil {
		log.WithError(err).Warnf("no nf_tables change notifications: the firewall guard checks the rules every %s", firewall.DefaultPoll)
	}
	go fw.Guard(ctx, firewall.GuardConfig{Changes: changes})
}

// iptablesBackend picks the iptables flavour from IPTABLES (auto, nft or
// legacy); auto follows whichever one the host's Docker uses.
func iptablesBackend(log logrus.FieldLogger) (string, string, error) {
	switch mode := envOr("IPTABLES", "auto"); mode {
	case "auto":
		v4, v6 := firewall.Detect(nil, log.WithField("component", "firewall"))
		return v4, v6, nil
	case "nft", "legacy":
		return "iptables-" + mode, "ip6tables-" + mode, nil
	default:
		return "", "", fmt.Errorf("IPTABLES=%q: use auto, nft or legacy (docker plugin set weft:latest IPTABLES=...)", mode)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// defaultSysctlRoot prefers the host's /proc/sys/net that config.json
// mounts read-write at /host/proc/sys/net (only net/: weft writes nothing
// else, and the rest of /proc would let a compromised plugin own the host).
func defaultSysctlRoot() string {
	if _, err := os.Stat("/host/proc/sys/net"); err == nil {
		return "/host/proc/sys"
	}
	return "/proc/sys"
}

// Command dummyplugin is a minimal Docker network plugin used by the lab's
// own tests: it answers the handshake and capability calls and accepts
// every other call with an empty JSON object. It also writes a marker file
// into its state mount (/state) so tests can check which host's state
// directory the plugin sees.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	const sock = "/run/docker/plugins/dummy.sock"
	host, _ := os.Hostname()
	if err := os.MkdirAll("/state", 0o755); err == nil {
		_ = os.WriteFile(filepath.Join("/state", "dummy-started"), []byte(host+"\n"), 0o644)
	}
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A plugin runs as PID 1 of its own PID namespace, where signals
	// without a handler are ignored: without this, every dockerd stop waits
	// out its plugin shutdown timeout before killing the plugin.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		_ = l.Close()
		os.Exit(0)
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("/Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"Implements":["NetworkDriver"]}`)
	})
	mux.HandleFunc("/NetworkDriver.GetCapabilities", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"Scope":"local","ConnectivityScope":"local"}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{}`)
	})
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

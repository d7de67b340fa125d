package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// weftProc is a weft daemon run directly, not as a managed plugin, in a
// plain lab host: its links and firewall rules land in that host's network
// namespace, and its state database in dir (on disk, so every change costs
// a real fsync as on a user's /var/lib/weft).
type weftProc struct {
	proc   *lab.Proc
	client *pluginClient
}

// weftArgs are the flags that run weft with its socket and state under
// dir, writing the host's own sysctls.
func weftArgs(dir string) []string {
	return []string{"-socket", filepath.Join(dir, "weft.sock"), "-state-dir", filepath.Join(dir, "state"), "-sysctl", "/proc/sys"}
}

// startWeft starts binary in h with its socket and state under dir and
// waits until it answers Plugin.Activate (which weft answers only once its
// state is restored).
func startWeft(ctx context.Context, h *lab.Host, binary, dir string) (*weftProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "weft.sock")
	p, err := h.Start(append([]string{binary}, weftArgs(dir)...)...)
	if err != nil {
		return nil, err
	}
	w := &weftProc{proc: p, client: newPluginClient(sock)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := w.client.call(cctx, "Plugin.Activate", struct{}{}, nil)
		cancel()
		if err == nil {
			return w, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("weft exited during startup; output:\n%s", p.Output())
		case <-ctx.Done():
			_ = p.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.Stop()
			return nil, fmt.Errorf("weft did not answer on %s within 30s: %v; output:\n%s", sock, err, p.Output())
		}
	}
}

// memory returns the process's VmRSS and VmHWM (peak RSS) in bytes.
func (w *weftProc) memory() (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", w.proc.Pid()))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	name := ""
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		switch k {
		case "Name":
			name = strings.TrimSpace(v)
		case "VmRSS", "VmHWM":
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, 0, fmt.Errorf("unexpected %s line %q", k, sc.Text())
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, 0, err
			}
			if k == "VmRSS" {
				rss = kb << 10
			} else {
				peak = kb << 10
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if name != "weft" || rss == 0 {
		return 0, 0, fmt.Errorf("pid %d is %q with VmRSS %d, not the weft daemon", w.proc.Pid(), name, rss)
	}
	return rss, peak, nil
}

// stop ends the daemon (SIGTERM, then SIGKILL) and returns an error with
// its output if it had died on its own.
func (w *weftProc) stop() error {
	select {
	case <-w.proc.Done():
		return fmt.Errorf("weft died during the benchmark; output:\n%s", w.proc.Output())
	default:
	}
	_ = w.proc.Stop()
	return nil
}

// fmtBytes formats a byte count in MiB.
func fmtBytes(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Package probe holds what the end-to-end suites (e2e, e2e/vm) ask of a
// network, the way a user would: one ping, one HTTP request, one name
// lookup, run with busybox from a container or a lab host, and their
// output read. It also has the httpd command those requests are answered
// by. It decides nothing about a test: the suites' helpers do.
package probe

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// Result is how one ping ended. A check that something must not be reached
// wants NoReply (or, where a missing route is the point, NoRoute): any
// other failure, such as a stopped container, no ping binary or a name
// that does not resolve, would pass a negative check whatever the network
// does, so Ping reports it as neither.
type Result string

const (
	Replied Result = "a reply"
	// NoReply: ping sent its probe and nothing answered in time.
	NoReply Result = "no reply"
	// NoRoute: the sender's kernel has no route to the target ("sendto:
	// Network is unreachable"), so nothing was sent.
	NoRoute Result = "no route"
)

// Ping pings target once from container on h, waiting up to wait for the
// reply. ok is false when ping ended in none of the Results; out (its
// output and error) then says how.
func Ping(ctx context.Context, h *lab.DockerHost, container, target string, wait time.Duration) (r Result, ok bool, out string) {
	out, err := h.Docker(ctx, append([]string{"exec", container}, pingArgs(target, wait)...)...)
	var de *lab.DockerError
	if errors.As(err, &de) {
		out += "\n" + de.Stderr
	}
	return classified(out, err)
}

// PingFromHost pings target once from lab host h (not a container).
func PingFromHost(ctx context.Context, h *lab.Host, target string, wait time.Duration) (r Result, ok bool, out string) {
	out, err := h.Run(ctx, append([]string{"busybox"}, pingArgs(target, wait)...)...)
	return classified(out, err)
}

func pingArgs(target string, wait time.Duration) []string {
	return []string{"ping", "-c", "1", "-W", strconv.Itoa(int(wait.Seconds())), target}
}

func classified(out string, err error) (Result, bool, string) {
	r, ok := Classify(out, err)
	if !ok {
		out = fmt.Sprintf("%v\n%s", err, out)
	}
	return r, ok, out
}

// pingStats is busybox ping's summary line.
var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`)

// PingStats reads the summary line of busybox ping's output: how many
// probes it sent and how many replies came back.
func PingStats(out string) (sent, received int, ok bool) {
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received, true
}

// Classify reads the output (stdout and stderr) and error of one busybox
// ping.
func Classify(out string, err error) (Result, bool) {
	sent, received, stats := PingStats(out)
	switch {
	case stats && sent == 1 && received == 1 && err == nil:
		return Replied, true
	case stats && sent == 1 && received == 0 && err != nil:
		return NoReply, true
	case !stats && err != nil && strings.Contains(out, "ping: sendto: Network is unreachable"):
		return NoRoute, true
	}
	return "", false
}

// Serving is a shell command serving body over HTTP on port 80 with
// busybox httpd (body is shell-expanded at start).
func Serving(body string) string {
	return "mkdir -p /www && echo " + body + " > /www/index.html && exec httpd -f -p 80 -h /www"
}

// HTTPGet fetches / from target:port with busybox nc inside container on
// h, giving up after wait, and returns the body.
func HTTPGet(ctx context.Context, h *lab.DockerHost, container, target string, port int, wait time.Duration) (string, error) {
	out, err := h.Docker(ctx, "exec", container, "sh", "-c", httpGet(target, port, wait, "nc"))
	return Body(out), err
}

// HostHTTPGet fetches / from target:port with busybox nc on lab host h.
func HostHTTPGet(ctx context.Context, h *lab.Host, target string, port int, wait time.Duration) (string, error) {
	out, err := h.Run(ctx, "sh", "-c", httpGet(target, port, wait, "busybox nc"))
	return Body(out), err
}

func httpGet(target string, port int, wait time.Duration, nc string) string {
	return fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | %s -w %d %s %d`, nc, int(wait.Seconds()), target, port)
}

// Body is the body of an HTTP response, trimmed.
func Body(resp string) string {
	_, b, _ := strings.Cut(resp, "\r\n\r\n")
	return strings.TrimSpace(b)
}

// Answers are the addresses in busybox nslookup's output, after the
// server's own lines, sorted.
func Answers(nslookup string) []string {
	_, after, found := strings.Cut(nslookup, "Name:")
	if !found {
		return nil
	}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "Address:" {
			out = append(out, f[1])
		}
	}
	sort.Strings(out)
	return out
}

// Within retries check every interval until it succeeds or timeout
// passes, and returns its last error.
func Within(timeout, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

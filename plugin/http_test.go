package plugin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, sock string) string {
	t.Helper()
	c := unixClient(sock)
	resp, err := c.Get("http://plugin/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// serveSocket serves s with the given timeouts on a socket in a temporary
// directory and returns the socket's path.
func serveSocket(t *testing.T, s *Server, to timeouts) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "weft.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := newHTTPServer(s, to)
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return sock
}

func TestNewHTTPServer(t *testing.T) {
	hs := NewHTTPServer(http.NotFoundHandler())
	if hs.ReadHeaderTimeout != 10*time.Second || hs.ReadTimeout != 30*time.Second || hs.IdleTimeout != 5*time.Minute {
		t.Errorf("timeouts: header %v, read %v, idle %v", hs.ReadHeaderTimeout, hs.ReadTimeout, hs.IdleTimeout)
	}
	if hs.WriteTimeout != 0 {
		t.Errorf("WriteTimeout %v would cut long calls", hs.WriteTimeout)
	}
	if hs.MaxHeaderBytes != 64<<10 {
		t.Errorf("MaxHeaderBytes %d", hs.MaxHeaderBytes)
	}
}

// TestTimeouts runs the server with short timeouts: a client that stalls
// in the header, in the body or between calls is cut off, while a call that
// takes longer than the read timeout still gets its answer.
func TestTimeouts(t *testing.T) {
	to := timeouts{readHeader: 200 * time.Millisecond, read: 400 * time.Millisecond, idle: 300 * time.Millisecond}
	s, f := newRecorded()
	sock := serveSocket(t, s, to)

	// closedWithin sends what, then waits for the server to close.
	closedWithin := func(name, what string, limit time.Duration) {
		t.Helper()
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if what != "" {
			if _, err := io.WriteString(c, what); err != nil {
				t.Fatal(err)
			}
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // returns at EOF: the server closed
		if took := time.Since(start); took > limit {
			t.Errorf("%s: connection closed after %v, want within %v", name, took, limit)
		}
	}
	closedWithin("half a header", "POST /NetworkDriver.DeleteNetwork HTTP/1.1\r\nHost: x\r\n", 5*time.Second)
	closedWithin("half a body", "POST /NetworkDriver.DeleteNetwork HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Net", 5*time.Second)
	closedWithin("nothing", "", 5*time.Second)

	// An idle kept-alive connection is closed after the idle timeout.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"NetworkID":"n1"}`
	fmt.Fprintf(c, "POST /NetworkDriver.DeleteNetwork HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DeleteNetwork: %d", resp.StatusCode)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF || time.Since(start) > 5*time.Second {
		t.Errorf("idle connection: %v after %v, want EOF within 5s", err, time.Since(start))
	}

	// A call slower than the read timeout is answered.
	f.delay = 3 * to.read
	client := unixClient(sock)
	r, err := client.Post("http://plugin/NetworkDriver.DeleteNetwork", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("slow call: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("slow call: %d", r.StatusCode)
	}
}

// TestHugeBodyOverSocket: a 64 MiB body sent to the real server gets 413
// and the connection is closed after the first MiB or so: the server stops
// reading instead of taking all of it in.
func TestHugeBodyOverSocket(t *testing.T) {
	s, f := newRecorded()
	sock := serveSocket(t, s, serverTimeouts)
	for _, declared := range []bool{true, false} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		const huge = 64 << 20
		header := "POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		if declared {
			header = fmt.Sprintf("POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", huge)
		}
		written := make(chan int64, 1)
		go func() {
			n, _ := io.WriteString(c, header)
			total := int64(n)
			chunk := []byte(strings.Repeat("a", 64<<10))
			for total < huge {
				var err error
				if declared {
					n, err = c.Write(chunk)
				} else {
					n, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
				}
				total += int64(n)
				if err != nil {
					break
				}
			}
			written <- total
		}()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"Err":"RequestPool request body is larger than 1048576 bytes`) {
			t.Errorf("declared %v: %d %s", declared, resp.StatusCode, b)
		}
		c.Close()
		if n := <-written; n >= huge {
			t.Errorf("declared %v: the server took all %d bytes", declared, n)
		}
	}
	if got := f.take(); len(got) > 0 {
		t.Errorf("a huge body reached the IPAM: %v", got)
	}
}

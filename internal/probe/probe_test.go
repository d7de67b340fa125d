package probe

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// The outputs are busybox 1.35's, as the lab's image prints them.
func TestClassify(t *testing.T) {
	exit1 := errors.New("exit status 1")
	for _, tc := range []struct {
		name string
		out  string
		err  error
		want Result
		ok   bool
	}{
		{"reply", "PING 10.0.0.2 (10.0.0.2): 56 data bytes\n64 bytes from 10.0.0.2: seq=0 ttl=64 time=0.1 ms\n\n--- 10.0.0.2 ping statistics ---\n1 packets transmitted, 1 packets received, 0% packet loss\n", nil, Replied, true},
		{"lost probe", "PING 10.0.0.2 (10.0.0.2): 56 data bytes\n\n--- 10.0.0.2 ping statistics ---\n1 packets transmitted, 0 packets received, 100% packet loss\n", exit1, NoReply, true},
		{"no route", "PING 10.0.0.2 (10.0.0.2): 56 data bytes\nping: sendto: Network is unreachable\n", exit1, NoRoute, true},
		// What must never pass a "must not reach" check.
		{"no such container", "Error response from daemon: No such container: web\n", exit1, "", false},
		{"unknown name", "ping: bad address 'web'\n", exit1, "", false},
		{"statistics but the command failed", "1 packets transmitted, 1 packets received, 0% packet loss\n", exit1, "", false},
		{"loss without an error", "1 packets transmitted, 0 packets received, 100% packet loss\n", nil, "", false},
		{"more than one probe", "3 packets transmitted, 3 packets received, 0% packet loss\n", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Classify(tc.out, tc.err)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Classify = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestPingStats(t *testing.T) {
	sent, received, ok := PingStats("--- x ping statistics ---\n250 packets transmitted, 249 packets received, 0% packet loss\n")
	if !ok || sent != 250 || received != 249 {
		t.Errorf("PingStats = %d, %d, %v; want 250, 249, true", sent, received, ok)
	}
	if _, _, ok := PingStats("ping: bad address 'x'"); ok {
		t.Error("PingStats found statistics in an error message")
	}
}

func TestAnswers(t *testing.T) {
	out := "Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n\nNon-authoritative answer:\nName:\ttasks.api\nAddress: 10.92.0.5\nName:\ttasks.api\nAddress: 10.92.0.3\n"
	if got := Answers(out); !slices.Equal(got, []string{"10.92.0.3", "10.92.0.5"}) {
		t.Errorf("Answers = %v, want the two task addresses sorted, not the server's", got)
	}
	if got := Answers("** server can't find api: NXDOMAIN\n"); got != nil {
		t.Errorf("Answers of NXDOMAIN = %v, want none", got)
	}
}

func TestBody(t *testing.T) {
	if got := Body("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\ns2\n"); got != "s2" {
		t.Errorf("Body = %q, want s2", got)
	}
	if got := Body("nc: timed out"); got != "" {
		t.Errorf("Body of no response = %q, want empty", got)
	}
}

func TestWithin(t *testing.T) {
	calls := 0
	err := Within(time.Minute, time.Millisecond, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Within = %v after %d calls, want success on the third", err, calls)
	}
	want := errors.New("never")
	if err := Within(5*time.Millisecond, time.Millisecond, func() error { return want }); err != want {
		t.Errorf("Within = %v, want the last error", err)
	}
}

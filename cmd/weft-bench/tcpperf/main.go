// Command tcpperf is weft-bench's TCP peer: the busybox test image has no
// iperf. weft-bench builds it static (CGO_ENABLED=0) and copies it into the
// benchmark containers.
//
//	tcpperf serve PORT               answer stream and ping-pong clients until killed
//	tcpperf stream HOST:PORT SECONDS send as fast as possible for SECONDS;
//	                                 prints "bits_per_second=N bytes=N seconds=N"
//	tcpperf rr HOST:PORT COUNT       COUNT one-byte request/response round trips;
//	                                 prints "p50_us=N p90_us=N p99_us=N"
//
// A client's first byte selects the service: 'S' (stream: the server counts
// the bytes until EOF and answers with the count as 8 bytes, big endian) or
// 'R' (ping-pong: the server echoes every byte).
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"time"
)

const (
	modeStream = 'S'
	modeRR     = 'R'
	// rrWarmup round trips run before the measured ones.
	rrWarmup = 50
)

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(":" + os.Args[2])
	case "stream":
		if len(os.Args) != 4 {
			usage()
		}
		var secs float64
		if secs, err = strconv.ParseFloat(os.Args[3], 64); err == nil {
			err = stream(os.Args[2], time.Duration(secs*float64(time.Second)))
		}
	case "rr":
		if len(os.Args) != 4 {
			usage()
		}
		var n int
		if n, err = strconv.Atoi(os.Args[3]); err == nil {
			err = pingPong(os.Args[2], n)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpperf:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tcpperf serve PORT | tcpperf stream HOST:PORT SECONDS | tcpperf rr HOST:PORT COUNT")
	os.Exit(2)
}

// serve accepts clients forever, each in its own goroutine.
func serve(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			if err := handle(c); err != nil {
				fmt.Fprintln(os.Stderr, "tcpperf: client", c.RemoteAddr(), err)
			}
		}()
	}
}

func handle(c net.Conn) error {
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return err
	}
	switch mode[0] {
	case modeStream:
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
		if err != nil {
			return err
		}
		var count [8]byte
		binary.BigEndian.PutUint64(count[:], uint64(n))
		_, err = c.Write(count[:])
		return err
	case modeRR:
		var b [1]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if _, err := c.Write(b[:]); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown mode %q", mode[0])
	}
}

// stream sends for d, then half-closes and waits for the server's byte
// count; the rate is what the server received over the whole exchange.
func stream(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(d + 30*time.Second)); err != nil {
		return err
	}
	buf := make([]byte, 128<<10)
	buf[0] = modeStream
	start := time.Now()
	if _, err := c.Write(buf[:1]); err != nil {
		return err
	}
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var count [8]byte
	if _, err := io.ReadFull(c, count[:]); err != nil {
		return fmt.Errorf("reading the server's byte count: %w", err)
	}
	secs := time.Since(start).Seconds()
	n := binary.BigEndian.Uint64(count[:])
	fmt.Printf("bits_per_second=%.0f bytes=%d seconds=%.3f\n", float64(n)*8/secs, n, secs)
	return nil
}

// pingPong measures n one-byte round trips (Nagle is off: Go's default).
func pingPong(addr string, n int) error {
	if n < 1 {
		return errors.New("COUNT must be at least 1")
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte{modeRR}); err != nil {
		return err
	}
	rtts := make([]time.Duration, 0, n)
	b := []byte{'x'}
	for i := 0; i < rrWarmup+n; i++ {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		if i >= rrWarmup {
			rtts = append(rtts, time.Since(start))
		}
	}
	slices.Sort(rtts)
	us := func(q float64) float64 {
		return float64(rtts[int(q*float64(len(rtts)-1))].Nanoseconds()) / 1e3
	}
	fmt.Printf("p50_us=%.1f p90_us=%.1f p99_us=%.1f\n", us(0.50), us(0.90), us(0.99))
	return nil
}

package labkit

import (
	"bytes"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsthread"
)

// Capture records the frames crossing one link, or every link, of a
// network namespace, in both directions, like a minimal tcpdump. It keeps
// at most the number of frames it was started with.
type Capture struct {
	fd     int
	max    int
	mu     sync.Mutex
	frames [][]byte
	quit   chan struct{} // closed by Stop
	done   chan struct{} // closed when the reader has returned
	stop   sync.Once
}

// StartCapture opens a packet socket in ns, on the link with index ifindex
// or, for 0, on all of them, and records up to max frames until Stop.
func StartCapture(ns netns.NsHandle, ifindex, max int) (*Capture, error) {
	fd, err := packetSocket(ns, ifindex)
	if err != nil {
		return nil, err
	}
	c := &Capture{fd: fd, max: max, quit: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	return c, nil
}

// packetSocket opens an AF_PACKET socket for every protocol in namespace
// ns, bound to one link unless ifindex is 0. The socket keeps its
// namespace after the thread leaves it.
func packetSocket(ns netns.NsHandle, ifindex int) (int, error) {
	fd := -1
	err := nsthread.In(ns, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL))); err != nil {
			return err
		}
		if ifindex != 0 {
			err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
		}
		if err == nil {
			// A receive timeout, so that the reader notices Stop.
			tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
			err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		}
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
		return err
	})
	return fd, err
}

// drainMax bounds the frames Stop still reads from the socket's queue.
const drainMax = 10000

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.quit:
			// Frames the kernel queued before Stop count too: read
			// them without waiting (a bounded number, as traffic may
			// go on arriving).
			for i := 0; i < drainMax && c.recv(buf, unix.MSG_DONTWAIT) == nil; i++ {
			}
			return
		default:
		}
		_ = c.recv(buf, 0) // an error is the receive timeout
	}
}

// recv reads one frame into the capture.
func (c *Capture) recv(buf []byte, flags int) error {
	n, _, err := unix.Recvfrom(c.fd, buf, flags)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if len(c.frames) < c.max {
		c.frames = append(c.frames, bytes.Clone(buf[:n]))
	}
	c.mu.Unlock()
	return nil
}

// Stop ends the capture (once; later calls only read) and returns the
// frames it saw.
func (c *Capture) Stop() [][]byte {
	c.stop.Do(func() {
		close(c.quit)
		<-c.done
		unix.Close(c.fd)
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

package nl

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsthread"
)

// nftRcvBuf is the socket's receive buffer: a dockerd start or an nft -f
// sends thousands of messages at once. An overflow only costs the details,
// which WatchNFTables does not use anyway (see ENOBUFS below).
const nftRcvBuf = 1 << 20

// WatchNFTables reports changes to the nf_tables ruleset (every table, chain,
// rule and set, whoever makes them: iptables-nft, nft, firewalld, dockerd's
// nftables backend) in the network namespace at nsPath, or the caller's when
// nsPath is "". It subscribes to the kernel's NFNLGRP_NFTABLES notifications,
// which needs CAP_NET_ADMIN and nothing more. The legacy x_tables backend
// sends none.
//
// The channel gets a value, without blocking, after every burst of messages:
// a receiver that is busy finds one value waiting, however many changes came
// meanwhile. It is closed when ctx ends or the socket fails.
func WatchNFTables(ctx context.Context, nsPath string) (<-chan struct{}, error) {
	fd, err := nftSocket(nsPath)
	if err != nil {
		return nil, err
	}
	// Non-blocking, so the file's reads go through Go's poller and Close
	// ends a pending one.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nf_tables notifications: %w", err)
	}
	f := os.NewFile(uintptr(fd), "nfnetlink")
	ch := make(chan struct{}, 1)
	notify := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		defer close(ch)
		buf := make([]byte, 64<<10)
		for {
			_, err := f.Read(buf)
			switch {
			case errors.Is(err, unix.ENOBUFS):
				// Messages were lost: a change happened anyway.
			case err != nil:
				return
			}
			notify()
		}
	}()
	return ch, nil
}

// nftSocket opens a NETLINK_NETFILTER socket subscribed to NFNLGRP_NFTABLES
// in the namespace at nsPath ("": the caller's). A socket stays in the
// namespace it was made in.
func nftSocket(nsPath string) (int, error) {
	open := func() (int, error) {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return -1, fmt.Errorf("nf_tables notifications: open netlink socket: %w", err)
		}
		// Best effort: the default buffer works, only overflows sooner.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, nftRcvBuf)
		sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.NFNLGRP_NFTABLES - 1)}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("nf_tables notifications: subscribe: %w", err)
		}
		return fd, nil
	}
	if nsPath == "" {
		return open()
	}
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return -1, fmt.Errorf("nf_tables notifications: namespace %s: %w", nsPath, err)
	}
	defer target.Close()
	fd := -1
	enter := func() error {
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("nf_tables notifications: enter %s: %w", nsPath, err)
		}
		return nil
	}
	err = nsthread.Do(enter, func() error {
		var err error
		fd, err = open()
		return err
	})
	return fd, err
}

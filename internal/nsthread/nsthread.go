// Package nsthread runs a function on a thread moved into another network
// namespace and brings the thread back afterwards.
//
// The namespace of a thread is per thread, so the work runs on a locked
// thread of its own. Locking it and letting the goroutine end (Go then
// retires the thread) is no way to leave a namespace: when the goroutine
// happens to run on the main thread, Go keeps that thread, parked in the
// namespace, and /proc/self/ns/net, which reads the main thread's, names that
// namespace for the rest of the process.
package nsthread

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on a thread that enter moved into another network namespace
// (by setns or unshare) and returns fn's error. The thread goes back to its
// namespace before it runs any other goroutine; if it cannot, it stays
// locked and Go retires it.
func Do(enter, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("this thread's namespace: %w", err)
			return
		}
		defer home.Close()
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err = fn()
		if netns.Set(home) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// In runs fn on a thread inside namespace ns.
func In(ns netns.NsHandle, fn func() error) error {
	return Do(func() error { return netns.Set(ns) }, fn)
}

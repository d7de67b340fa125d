package firewall

import (
	"context"
	"strings"
	"time"
)

// Guard defaults; see GuardConfig.
const (
	// DefaultPoll is the check period without change notifications: the
	// guard must notice a change within two seconds.
	DefaultPoll = time.Second
	// DefaultPollNotified is the check period when notifications arrive: a
	// safety net only.
	DefaultPollNotified = 30 * time.Second
	// DefaultSettle is how long the guard lets a burst of changes go on
	// before it looks: dockerd and firewalld rewrite the tables in many
	// steps, and checking after each would cost more than it helps.
	DefaultSettle = 100 * time.Millisecond
)

// GuardConfig configures Guard.
type GuardConfig struct {
	// Changes delivers a value when the kernel's ruleset may have changed
	// (internal/nl's WatchNFTables). nil, or closed: none arrive, and the
	// guard polls every DefaultPoll.
	Changes <-chan struct{}
	// Poll is the period of checks that no notification asked for.
	// Default DefaultPollNotified with Changes on an nf_tables host (the
	// iptables commands end in -nft), else DefaultPoll: the legacy
	// backend sends no notifications.
	Poll time.Duration
	// Settle is the wait between a notification and the check. Default
	// DefaultSettle.
	Settle time.Duration
	// Repaired, when set, is called after each check that found weft's
	// rules changed, with what it found and put back.
	Repaired func(Repair)
}

// Repair is one check of the guard that found something to put back.
type Repair struct {
	// Changes are what differed, one per chain or jump ("IPv4 filter:
	// jump FORWARD -j WEFT-FORWARD is behind -j DOCKER-FORWARD").
	Changes []string
	// Took is the time from the notification (or the poll) that started
	// the check to the end of the repair.
	Took time.Duration
	// Err is why the repair failed, if it did.
	Err error
}

// Guard keeps weft's chains and jumps as the last successful Apply left
// them, until ctx ends: whoever changes them (a dockerd restart moving its
// jump above weft's, a firewalld reload, iptables -F FORWARD, nft flush
// ruleset), the guard notices within DefaultSettle of a notification, or
// within one poll period, and applies the last Ruleset again, with a log
// line saying what was changed. Docker itself repairs its rules only when it
// restarts.
//
// A check reads the tables with iptables-save and ip6tables-save, and runs
// nothing else when they match; before the first Apply, and while the last
// Ruleset is empty, it runs nothing at all.
func (f *Firewall) Guard(ctx context.Context, cfg GuardConfig) {
	changes := cfg.Changes
	poll := cfg.Poll
	if poll <= 0 {
		poll = DefaultPoll
		if changes != nil && strings.HasSuffix(f.cfg.IPTables, "-nft") {
			poll = DefaultPollNotified
		}
	}
	settle := cfg.Settle
	if settle <= 0 {
		settle = DefaultSettle
	}
	tick := time.NewTimer(poll)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				f.log.Warn("firewall guard: no more change notifications; checking every ", DefaultPoll)
				changes, poll = nil, DefaultPoll
				continue
			}
		case <-tick.C:
		}
		start := time.Now()
		if changes != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(settle):
			}
			// What came during the wait is seen by this check.
			select {
			case <-changes:
			default:
			}
		}
		found, err := f.repair()
		took := time.Since(start)
		switch {
		case err != nil:
			// Once per distinct failure: a command that keeps failing
			// would fill the log every second.
			if err.Error() != lastErr {
				f.log.WithError(err).Error("firewall guard: could not put weft's rules back: " + strings.Join(found, "; "))
			}
			lastErr = err.Error()
		case len(found) > 0:
			lastErr = ""
			f.log.WithField("took", took.Round(time.Millisecond)).Warn("firewall guard: weft's firewall rules were changed by someone else, put back: " + strings.Join(found, "; "))
		default:
			lastErr = ""
		}
		if (err != nil || len(found) > 0) && cfg.Repaired != nil {
			cfg.Repaired(Repair{Changes: found, Took: took, Err: err})
		}
		tick.Reset(poll)
	}
}

// repair applies the last successful Ruleset again and returns what it
// changed.
func (f *Firewall) repair() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last == nil || f.last.empty() {
		return nil, nil
	}
	return f.apply(*f.last)
}

// empty reports whether r asks for no rule at all.
func (r Ruleset) empty() bool {
	return len(r.Networks)+len(r.Ports)+len(r.Encrypted)+len(r.Kept) == 0
}

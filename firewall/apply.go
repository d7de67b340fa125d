package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// cmdTimeout bounds one iptables command. iptables-restore -w waits for the
// xtables lock (legacy backend) as long as it takes; a lock held forever
// must not hang the plugin forever.
const cmdTimeout = time.Minute

// attempts is how often a family's changes are tried: a restore fails when
// someone (dockerd, firewalld) changed the tables between our iptables-save
// and our iptables-restore, e.g. deleted the jump we wanted to move. Reading
// again and planning again fixes that.
const attempts = 3

// apply makes the kernel match r, which must be normalized. Callers hold
// f.mu.
func (f *Firewall) apply(r Ruleset) error {
	want := [2]chainRules{rulesFor(r, ipv4), rulesFor(r, ipv6)}
	// Check that the commands exist before changing anything, so that a
	// missing ip6tables does not leave the IPv4 half applied.
	var skip [2]bool
	for _, fam := range []family{ipv4, ipv6} {
		if f.available(fam) {
			continue
		}
		if len(want[fam]) > 0 {
			return fmt.Errorf("%s, but %s is not installed (%s or %s not found in PATH)",
				needer(r, fam), f.tool(fam), f.tool(fam)+"-save", f.tool(fam)+"-restore")
		}
		// Nothing wanted and no command: nothing can be there to remove.
		skip[fam] = true
	}
	if len(want[ipv6][ChainDNAT]) > 0 && !f.ip6NAT() {
		// IPv6 nat holds nothing but port mappings (DNAT and their
		// hairpin masquerade): IPv6 is never masqueraded.
		f.log.Debugf("%s nat table does not work: skipping IPv6 port mappings", f.cfg.IP6Tables)
		delete(want[ipv6], ChainDNAT)
		delete(want[ipv6], ChainPostrouting)
	}
	for _, fam := range []family{ipv4, ipv6} {
		if skip[fam] {
			continue
		}
		if err := f.applyFamily(fam, want[fam]); err != nil {
			return err
		}
	}
	return nil
}

// applyFamily brings one family's tables to want.
func (f *Firewall) applyFamily(fam family, want chainRules) error {
	tool := f.tool(fam)
	var lastErr error
	for range attempts {
		saved, err := f.run("", tool+"-save")
		if err != nil {
			return fmt.Errorf("read %s rules: %w", tool, err)
		}
		text := plan(fam, want, parseSave(saved))
		if text == "" {
			return nil
		}
		f.log.Debugf("%s-restore --noflush input:\n%s", tool, text)
		f.restores++
		if _, lastErr = f.run(text, tool+"-restore", "--noflush", "-w"); lastErr == nil {
			return nil
		}
		f.log.Debugf("%s-restore failed, reading the tables again: %v", tool, lastErr)
	}
	return fmt.Errorf("apply %s rules: %w", tool, lastErr)
}

// tool is the iptables command of a family.
func (f *Firewall) tool(fam family) string {
	if fam == ipv6 {
		return f.cfg.IP6Tables
	}
	return f.cfg.IPTables
}

// available reports whether a family's save and restore commands exist.
func (f *Firewall) available(fam family) bool {
	for _, suffix := range []string{"-save", "-restore"} {
		if _, err := exec.LookPath(f.tool(fam) + suffix); err != nil {
			return false
		}
	}
	return true
}

// ip6NAT reports whether the ip6tables nat table can be used: with the
// legacy backend it needs the ip6table_nat module. Success is remembered; a
// failure is probed again next time, in case the module got loaded.
func (f *Firewall) ip6NAT() bool {
	if !f.v6NAT {
		_, err := f.run("", f.cfg.IP6Tables+"-save", "-t", "nat")
		f.v6NAT = err == nil
	}
	return f.v6NAT
}

// needer names what needs a family's rules, for error messages.
func needer(r Ruleset, fam family) string {
	for _, n := range r.Networks {
		for _, s := range n.Subnets {
			if familyOf(s.Addr()) == fam {
				return fmt.Sprintf("network %s has %s subnet %s", n.Bridge, fam, s)
			}
		}
	}
	return "the ruleset needs " + fam.String() + " rules"
}

// run runs one command (after the configured prefix) with stdin as input and
// returns its standard output. Errors carry the command line and its
// standard error, which is where iptables explains itself.
func (f *Firewall) run(stdin, name string, args ...string) (string, error) {
	argv := append(append(slices.Clone(f.cfg.Prefix), name), args...)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

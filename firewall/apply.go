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

// apply makes the kernel match r, which must be normalized, and returns
// what it changed (see plan). Callers hold f.mu.
func (f *Firewall) apply(r Ruleset) ([]string, error) {
	want := [2]chainRules{rulesFor(r, ipv4), rulesFor(r, ipv6)}
	// Check that the commands exist before changing anything, so that a
	// missing ip6tables does not leave the IPv4 half applied.
	var skip [2]bool
	for _, fam := range []family{ipv4, ipv6} {
		if f.available(fam) {
			continue
		}
		if len(want[fam]) > 0 {
			return nil, fmt.Errorf("%s, but %s is not installed (%s or %s not found in PATH)",
				needer(r, fam), f.tool(fam), f.tool(fam)+"-save", f.tool(fam)+"-restore")
		}
		// Nothing wanted and no command: nothing can be there to remove.
		skip[fam] = true
	}
	var changes []string
	for _, fam := range []family{ipv4, ipv6} {
		if skip[fam] {
			continue
		}
		c, err := f.applyFamily(fam, want[fam], r)
		changes = append(changes, c...)
		if err != nil {
			return changes, err
		}
	}
	f.last = &r
	return changes, nil
}

// applyFamily brings one family's tables to want, plus the rules r keeps,
// and returns what it changed (or, with an error, what it meant to change).
func (f *Firewall) applyFamily(fam family, want chainRules, r Ruleset) ([]string, error) {
	tool := f.tool(fam)
	var lastErr error
	var changes []string
	for range attempts {
		saved, err := f.run("", tool+"-save")
		if err != nil {
			return nil, fmt.Errorf("read %s rules: %w", tool, err)
		}
		cur := parseSave(saved)
		var text string
		text, changes = plan(fam, f.supported(fam, withKept(want, r, cur)), cur)
		if text == "" {
			return nil, nil
		}
		f.log.Debugf("%s-restore --noflush input:\n%s", tool, text)
		f.restores++
		if _, lastErr = f.run(text, tool+"-restore", "--noflush", "-w"); lastErr == nil {
			return changes, nil
		}
		f.log.Debugf("%s-restore failed, reading the tables again: %v", tool, lastErr)
	}
	return changes, fmt.Errorf("apply %s rules: %w", tool, lastErr)
}

// supported returns want without the chains of optional features that this
// kernel or iptables lacks.
func (f *Firewall) supported(fam family, want chainRules) chainRules {
	out := chainRules{}
	for chain, rules := range want {
		out[chain] = rules
	}
	if len(out[ChainNotrack]) > 0 && !f.notrackUsable(fam) {
		// Only a saving: without it everything is tracked.
		f.log.Debugf("%s cannot use -j CT --notrack in the raw table: container traffic stays tracked", f.tool(fam))
		delete(out, ChainNotrack)
	}
	if fam == ipv6 && len(out[ChainDNAT]) > 0 && !f.tableUsable(ipv6, "nat") {
		// IPv6 nat holds nothing but port mappings (DNAT and their
		// hairpin masquerade): IPv6 is never masqueraded.
		f.log.Debugf("%s nat table does not work: skipping IPv6 port mappings", f.cfg.IP6Tables)
		delete(out, ChainDNAT)
		delete(out, ChainPostrouting)
	}
	if len(out[ChainIsolation]) > 0 && !f.tableUsable(fam, "mangle") {
		if !f.noMangle[fam] {
			f.noMangle[fam] = true
			f.log.Warnf("%s mangle table does not work (legacy iptables needs the %s module): "+
				"the isolation of weft's networks now depends on weft's jump staying ahead of Docker's in FORWARD, "+
				"which weft's firewall guard restores when Docker moves it", f.tool(fam), map[family]string{ipv4: "iptable_mangle", ipv6: "ip6table_mangle"}[fam])
		}
		delete(out, ChainIsolation)
	}
	return out
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

// tableUsable reports whether a table of a family can be used: with the
// legacy backend, ip6tables nat needs the ip6table_nat module.
func (f *Firewall) tableUsable(fam family, table string) bool {
	return f.probe(fam, table, func() error {
		_, err := f.run("", f.tool(fam)+"-save", "-t", table)
		return err
	})
}

// notrackUsable reports whether the raw table takes a CT --notrack rule: it
// needs iptable_raw (legacy backend) and xt_CT, which a kernel that cannot
// load modules on demand may lack. Only the kernel can tell, so the probe
// commits the rule in a chain of its own, then removes the chain (neither
// --test nor a rule removed in the same transaction reaches the kernel with
// the nft backend).
func (f *Firewall) notrackUsable(fam family) bool {
	return f.probe(fam, "raw CT", func() error {
		restore := f.tool(fam) + "-restore"
		_, err := f.run("*raw\n:"+probeChain+" - [0:0]\n-A "+probeChain+" -j CT --notrack\nCOMMIT\n", restore, "--noflush", "-w")
		if err == nil {
			_, err = f.run("*raw\n-F "+probeChain+"\n-X "+probeChain+"\nCOMMIT\n", restore, "--noflush", "-w")
		}
		return err
	})
}

// probeChain is the raw-table chain notrackUsable tries its rule in.
const probeChain = "WEFT-PROBE"

// probe runs check unless it succeeded before for this family and name.
// Success is remembered; a failure is probed again next time, in case the
// module got loaded.
func (f *Firewall) probe(fam family, name string, check func() error) bool {
	if f.usable[fam][name] {
		return true
	}
	if check() != nil {
		return false
	}
	if f.usable[fam] == nil {
		f.usable[fam] = map[string]bool{}
	}
	f.usable[fam][name] = true
	return true
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

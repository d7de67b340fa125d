package firewall

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// dockerUserJump is the rule dockerd keeps at the top of FORWARD. weft's own
// jump goes right after it, so the rules users put in DOCKER-USER apply to
// weft's networks as they do to Docker's.
const dockerUserJump = "-j DOCKER-USER"

// savedTable is one table as iptables-save printed it.
type savedTable struct {
	chains map[string]bool     // every chain, built-in or not
	rules  map[string][]string // chain -> rules, each after "-A <chain> "
}

// parseSave reads iptables-save output into tables by name. Comments,
// policies and counters are ignored.
func parseSave(text string) map[string]*savedTable {
	tabs := map[string]*savedTable{}
	var cur *savedTable
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			cur = &savedTable{chains: map[string]bool{}, rules: map[string][]string{}}
			tabs[line[1:]] = cur
		case line == "COMMIT":
			cur = nil
		case cur == nil:
		case line[0] == ':':
			name, _, _ := strings.Cut(line[1:], " ")
			cur.chains[name] = true
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[len("-A "):], " ")
			cur.rules[chain] = append(cur.rules[chain], spec)
		}
	}
	return tabs
}

// targets reports whether a rule jumps (or goes) to chain.
func targets(spec, chain string) bool {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "-j", "--jump", "-g", "--goto":
			if f[i+1] == chain {
				return true
			}
		}
	}
	return false
}

// plan returns the iptables-restore --noflush input that turns the tables in
// cur into the wanted content of weft's chains for one family, or "" when
// the kernel already matches, and what differs, one line per chain or jump
// (for the guard's log). It only ever writes weft's chains and the jump
// rules into them: every other rule is left where it is.
//
// Each table gets its own COMMIT, so each table changes atomically. Within a
// table the commands are ordered: chain declarations (which also flush an
// existing chain), deletions of misplaced jumps, the chains' rules, new
// jumps, and last the removal of chains no longer wanted.
func plan(fam family, want chainRules, cur map[string]*savedTable) (string, []string) {
	var b strings.Builder
	var changes []string
	for _, table := range tables {
		tab := cur[table]
		if tab == nil {
			tab = &savedTable{chains: map[string]bool{}, rules: map[string][]string{}}
		}
		changed := func(format string, args ...any) {
			changes = append(changes, fam.String()+" "+table+": "+fmt.Sprintf(format, args...))
		}
		var decl, del, add, ins, drop []string
		for _, def := range chainDefs {
			if def.table != table {
				continue
			}
			rules := want[def.name]
			if len(rules) == 0 {
				// Unwanted: remove every reference, then the chain.
				for _, chain := range sortedKeys(tab.rules) {
					for _, spec := range tab.rules[chain] {
						if targets(spec, def.name) {
							del = append(del, "-D "+chain+" "+spec)
							changed("jump %s %s is not wanted", chain, spec)
						}
					}
				}
				if tab.chains[def.name] {
					drop = append(drop, "-F "+def.name, "-X "+def.name)
					changed("chain %s is not wanted", def.name)
				}
				continue
			}
			if !tab.chains[def.name] || !slices.Equal(tab.rules[def.name], rules) {
				changed("chain %s %s", def.name, chainDiff(tab.chains[def.name], tab.rules[def.name], rules))
				decl = append(decl, ":"+def.name+" - [0:0]")
				for _, r := range rules {
					add = append(add, "-A "+def.name+" "+r)
				}
			}
			for _, j := range def.jumps(fam) {
				d, i, diff := placeJump(j, def.name, tab.rules[j.from])
				if diff != "" {
					changed("%s", diff)
					del, ins = append(del, d...), append(ins, i)
				}
			}
		}
		if len(decl)+len(del)+len(add)+len(ins)+len(drop) == 0 {
			continue
		}
		b.WriteString("*" + table + "\n")
		for _, part := range [][]string{decl, del, add, ins, drop} {
			for _, line := range part {
				b.WriteString(line + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String(), changes
}

// placeJump returns the commands that put the jump j to chain where it
// belongs in existing (the rules of j.from): the deletions of weft's jumps
// there and the insertion, with what was wrong; or diff "" when j is in
// place.
func placeJump(j jump, chain string, existing []string) (del []string, ins, diff string) {
	var ours, others []string
	at := -1
	for i, spec := range existing {
		if targets(spec, chain) {
			ours = append(ours, spec)
			at = i
		} else {
			others = append(others, spec)
		}
	}
	if len(ours) == 1 && ours[0] == j.spec && (!j.early || earlyOK(existing, at)) {
		return nil, "", ""
	}
	for _, spec := range ours {
		del = append(del, "-D "+j.from+" "+spec)
	}
	pos := 1
	if j.early {
		// Deletions run first, so count in the chain without weft's
		// jumps.
		pos += slices.Index(others, dockerUserJump) + 1
	}
	return del, "-I " + j.from + " " + strconv.Itoa(pos) + " " + j.spec, jumpDiff(j, ours, existing, at)
}

// chainDiff says how a weft chain in the kernel (exists, have) differs from
// want.
func chainDiff(exists bool, have, want []string) string {
	switch {
	case !exists:
		return "is missing"
	case len(have) == 0:
		return "is empty (flushed)"
	}
	count := map[string]int{}
	for _, r := range want {
		count[r]++
	}
	foreign := 0
	for _, r := range have {
		if count[r] > 0 {
			count[r]--
		} else {
			foreign++
		}
	}
	missing := 0
	for _, n := range count {
		missing += n
	}
	switch {
	case missing == 0 && foreign == 0:
		return "has its rules in another order"
	case foreign == 0:
		return fmt.Sprintf("lacks %d of its %d rules", missing, len(want))
	case missing == 0:
		return fmt.Sprintf("holds %d rules that are not weft's", foreign)
	}
	return fmt.Sprintf("lacks %d of its %d rules and holds %d that are not weft's", missing, len(want), foreign)
}

// jumpDiff says what is wrong with the jump j, given weft's jumps into its
// chain (ours) and the chain, where the last of ours is at index at.
func jumpDiff(j jump, ours, chain []string, at int) string {
	switch {
	case len(ours) == 0:
		return fmt.Sprintf("jump %s %s is missing", j.from, j.spec)
	case len(ours) > 1:
		return fmt.Sprintf("%s holds %d jumps to %s", j.from, len(ours), targetOf(j.spec))
	case ours[0] != j.spec:
		return fmt.Sprintf("jump %s %s has another form: %s", j.from, j.spec, ours[0])
	}
	user := slices.Index(chain, dockerUserJump)
	if user > at {
		return fmt.Sprintf("jump %s %s is ahead of %s", j.from, j.spec, dockerUserJump)
	}
	// The first rule between DOCKER-USER (or the top) and ours.
	return fmt.Sprintf("jump %s %s is behind %s", j.from, j.spec, chain[user+1])
}

// targetOf is the chain a weft jump rule goes to.
func targetOf(spec string) string {
	f := strings.Fields(spec)
	return f[len(f)-1]
}

// earlyOK reports whether the early jump at index at of chain is where it
// belongs: right behind Docker's DOCKER-USER jump if the chain has one (the
// rules users put there, and whatever rules come before it, apply to weft's
// networks as to Docker's), else first.
func earlyOK(chain []string, at int) bool {
	return slices.Index(chain, dockerUserJump) == at-1
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

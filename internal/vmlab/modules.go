package vmlab

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultModules go into every initramfs, with their dependencies. They are
// not loaded at boot (that costs time under TCG): the kernel loads them on
// demand through /sbin/modprobe (busybox), e.g. on `ip link add type
// ipvlan`, an xfrm state with ESP or an nft rule. Spec.Modules adds more and
// loads them before the test starts. Names a kernel lacks are left out.
var DefaultModules = []string{
	// links
	"dummy", "veth", "macvlan", "macvtap", "ipvlan", "ipvtap", "8021q", "bridge",
	"br_netfilter", "vxlan", "geneve", "vrf", "wireguard", "tun",
	// firewall: nf_tables and the iptables-nft compat layer Docker uses
	"nf_tables", "nft_compat", "nft_chain_nat", "nft_ct", "nft_masq", "nft_nat",
	"nft_redir", "nft_reject_inet", "nft_fib_inet", "nft_limit", "nf_conntrack_netlink",
	"x_tables", "xt_conntrack", "xt_MASQUERADE", "xt_addrtype", "xt_comment", "xt_mark",
	"xt_nat", "xt_tcpudp", "xt_multiport", "xt_physdev", "xt_REDIRECT", "xt_state",
	"xt_set", "xt_statistic", "xt_CHECKSUM", "xt_LOG", "ipt_REJECT", "ip6t_REJECT",
	"iptable_filter", "iptable_nat", "iptable_mangle", "iptable_raw",
	"ip6table_filter", "ip6table_nat", "ip6table_mangle", "ip6table_raw",
	"ip_set_hash_ip", "ip_set_hash_net", "ip_vs", "ip_vs_rr", "xt_ipvs", "xt_policy", "xt_u32",
	"xt_CT", "xt_bpf",
	// Docker's overlay2 storage driver
	"overlay",
	// IPsec: xfrm netlink (without xfrm_user, a NETLINK_XFRM socket fails
	// with EPROTONOSUPPORT), ESP/AH, the AEAD/cipher templates they ask for,
	// and stdrng (drbg): ESP's IV generators (seqiv, echainiv) need it, and
	// without it adding an SA fails with ENOENT ("Kernel was unable to
	// initialize cryptographic operations").
	"xfrm_user", "drbg", "jitterentropy_rng", "xfrm_interface", "esp4", "esp6", "ah4", "ah6", "xfrm4_tunnel",
	"xfrm6_tunnel", "authenc", "authencesn", "echainiv", "seqiv", "gcm", "ghash_generic",
	"ctr", "ccm", "cbc", "chacha20poly1305", "sha512_generic", "cmac", "xcbc", "des_generic",
}

// moduleIndex is a kernel's modules.dep, modules.alias and modules.builtin.
type moduleIndex struct {
	dir        string
	path       map[string]string   // module name -> path relative to dir
	deps       map[string][]string // module name -> names it needs
	builtin    map[string]bool
	aliases    []string // modules.alias lines: "alias PATTERN module"
	rawBuiltin []string // modules.builtin lines
}

// modName turns "kernel/net/8021q/8021q.ko" or "ghash-generic" into the
// name modprobe uses ("8021q", "ghash_generic").
func modName(p string) string {
	n := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		n = strings.TrimSuffix(n, ext)
	}
	n = strings.TrimSuffix(n, ".ko")
	return strings.ReplaceAll(n, "-", "_")
}

func loadModuleIndex(dir string) (*moduleIndex, error) {
	ix := &moduleIndex{dir: dir, path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	dep, err := readLines(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("modules.dep (depmod not run?): %w", err)
	}
	for _, line := range dep {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name := modName(mod)
		ix.path[name] = mod
		for _, d := range strings.Fields(rest) {
			ix.deps[name] = append(ix.deps[name], modName(d))
		}
	}
	if b, err := readLines(filepath.Join(dir, "modules.builtin")); err == nil {
		ix.rawBuiltin = b
		for _, l := range b {
			ix.builtin[modName(l)] = true
		}
	}
	if a, err := readLines(filepath.Join(dir, "modules.alias")); err == nil {
		for _, l := range a {
			if strings.HasPrefix(l, "alias ") {
				ix.aliases = append(ix.aliases, l)
			}
		}
	}
	return ix, nil
}

// closure returns the loadable modules needed for names, dependencies first.
// Built-in names need nothing; unknown names are returned in missing.
func (ix *moduleIndex) closure(names []string) (mods, missing []string) {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range ix.deps[n] {
			visit(d)
		}
		mods = append(mods, n)
	}
	for _, n := range names {
		n = modName(n)
		switch {
		case ix.path[n] != "":
			visit(n)
		case !ix.builtin[n]:
			missing = append(missing, n)
		}
	}
	return mods, missing
}

// isBuiltin reports whether the kernel has name compiled in.
func (ix *moduleIndex) isBuiltin(name string) bool { return ix.builtin[modName(name)] }

// metadata returns modules.dep, modules.alias and modules.builtin restricted
// to mods, for busybox modprobe inside the VM (it reads the text files only).
func (ix *moduleIndex) metadata(mods []string) map[string][]byte {
	in := map[string]bool{}
	for _, m := range mods {
		in[m] = true
	}
	var dep strings.Builder
	sorted := append([]string(nil), mods...)
	sort.Strings(sorted)
	for _, m := range sorted {
		dep.WriteString(ix.path[m] + ":")
		for _, d := range ix.deps[m] {
			dep.WriteString(" " + ix.path[d])
		}
		dep.WriteString("\n")
	}
	var alias strings.Builder
	for _, l := range ix.aliases {
		f := strings.Fields(l)
		if len(f) == 3 && in[modName(f[2])] {
			alias.WriteString(l + "\n")
		}
	}
	builtin := strings.Join(ix.rawBuiltin, "\n") + "\n"
	return map[string][]byte{
		"modules.dep":     []byte(dep.String()),
		"modules.alias":   []byte(alias.String()),
		"modules.builtin": []byte(builtin),
	}
}

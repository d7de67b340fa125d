package firewall

import (
	"os/exec"
	"strings"

	"github.com/sirupsen/logrus"
)

// Detect picks the iptables and ip6tables commands whose backend (nf_tables
// or legacy x_tables) the host's firewall, and so the host's Docker, uses:
// weft's rules only take effect next to Docker's if both sit in the same
// backend. Both backends are hooked into the kernel at once, and a packet
// must be accepted by both, so rules in the wrong one are at best useless.
//
// The rule, for the iptables command (ip6tables follows it):
//
//  1. Only one of iptables-nft and iptables-legacy is installed: that one.
//     Neither: the plain names "iptables" and "ip6tables".
//  2. The legacy tables hold Docker's chains (DOCKER, DOCKER-USER, ...) and
//     the nf_tables ones do not: legacy.
//  3. Neither holds Docker's chains (Docker runs with --iptables=false, or
//     is not started yet), the legacy tables hold rules and the nf_tables
//     ones none: legacy.
//  4. iptables-nft-save fails (no nf_tables in the kernel) and
//     iptables-legacy-save works: legacy.
//  5. Otherwise nf_tables, the default of every current distribution.
//
// The tables are read in the network namespace that prefix enters (nil: the
// caller's). Detect never fails: when in doubt it answers nf_tables.
func Detect(prefix []string, log logrus.FieldLogger) (iptables, ip6tables string) {
	if log == nil {
		log = logrus.StandardLogger()
	}
	probe := &Firewall{cfg: Config{Prefix: prefix}, log: log}
	has := func(name string) bool { _, err := exec.LookPath(name); return err == nil }
	pick := func(backend, why string) (string, string) {
		ip4, ip6 := "iptables", "ip6tables"
		if backend != "" {
			ip4 += "-" + backend
			if has("ip6tables-" + backend) {
				ip6 += "-" + backend
			}
		}
		log.Debugf("firewall: using %s and %s: %s", ip4, ip6, why)
		return ip4, ip6
	}
	haveNFT, haveLegacy := has("iptables-nft-save"), has("iptables-legacy-save")
	switch {
	case !haveNFT && !haveLegacy:
		return pick("", "no iptables-nft or iptables-legacy installed")
	case !haveLegacy:
		return pick("nft", "iptables-legacy is not installed")
	case !haveNFT:
		return pick("legacy", "iptables-nft is not installed")
	}
	nft, nftErr := probe.run("", "iptables-nft-save")
	legacy, legacyErr := probe.run("", "iptables-legacy-save")
	nftDocker, legacyDocker := hasDockerChains(nft), hasDockerChains(legacy)
	switch {
	case legacyErr == nil && legacyDocker && !nftDocker:
		return pick("legacy", "Docker's chains are in the legacy tables")
	case legacyErr == nil && !legacyDocker && !nftDocker && hasRules(legacy) && !hasRules(nft):
		return pick("legacy", "no Docker chains anywhere, but the legacy tables hold rules and nf_tables none")
	case nftErr != nil && legacyErr == nil:
		return pick("legacy", "iptables-nft-save failed: "+nftErr.Error())
	case nftDocker:
		return pick("nft", "Docker's chains are in the nf_tables tables")
	}
	return pick("nft", "default backend")
}

// hasDockerChains reports whether iptables-save output declares one of the
// chains dockerd creates (DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1...).
func hasDockerChains(save string) bool {
	for line := range strings.Lines(save) {
		if name, ok := strings.CutPrefix(line, ":DOCKER"); ok && name != "" && (name[0] == ' ' || name[0] == '-') {
			return true
		}
	}
	return false
}

// hasRules reports whether iptables-save output holds any rule.
func hasRules(save string) bool {
	for line := range strings.Lines(save) {
		if strings.HasPrefix(line, "-A ") {
			return true
		}
	}
	return false
}

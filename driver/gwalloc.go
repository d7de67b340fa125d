package driver

import "github.com/weftnet/weft/internal/netmode"

// SkipGateways answers a Docker 28+ engine's GwAllocCheck, sent before
// CreateNetwork with the same options: which families of such a network
// need no gateway address (bridge.Network.SkipGateways). Options that do
// not parse skip nothing: CreateNetwork then refuses them with the error
// the user sees.
func (d *Driver) SkipGateways(opts map[string]string, internal bool) (v4, v6 bool) {
	cfg := netmode.NewConfig(netmode.Bridge)
	if m, ok := opts[OptMode]; ok {
		cfg.Mode = m
	}
	cfg.Internal = internal
	n, ok := newNetwork("gwalloccheck", cfg)
	if !ok || n.setOptions(opts) != nil {
		return false, false
	}
	if b := bridgeOf(n); b != nil {
		return b.SkipGateways()
	}
	return false, false
}

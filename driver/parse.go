package driver

import (
	"maps"
	"slices"
	"strings"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
)

// The -o options the driver reads itself; each mode's are its package's.
const (
	OptMode = netmode.OptMode
	// OptSwarm is not for users: weft's AllocateNetwork sets it on every
	// swarm network (see ipam's MarkSwarmCopy).
	OptSwarm = netmode.OptSwarm
)

// parseNetwork turns CreateNetwork's request into a network, rejecting
// anything a user could have typed wrong, before anything is built.
func parseNetwork(req *NetworkRequest) (*Network, error) {
	// Link names are made from the id: one with a space or a slash would
	// make names the kernel refuses.
	if !ifname.ValidID(req.NetworkID) {
		return nil, errdefs.Errorf(ErrInvalid, "network id %q: expected up to %d letters, digits, '-', '_' or '.', as dockerd's ids are", req.NetworkID, ifname.MaxIDLen)
	}
	cfg := netmode.NewConfig(netmode.Bridge)
	if m, ok := req.Options[OptMode]; ok {
		if _, known := modes[m]; !known {
			return nil, netmode.OptionError(OptMode, m, "accepted modes are "+strings.Join(modeNames, ", "))
		}
		cfg.Mode = m
	}
	cfg.IPv6, cfg.Internal = req.IPv6, req.Internal
	n, _ := newNetwork(req.NetworkID, cfg)
	if err := n.setOptions(req.Options); err != nil {
		return nil, err
	}
	if err := n.Config.SetSubnets(req.IPv4Data, req.IPv6Data); err != nil {
		return nil, err
	}
	if err := n.mode.Check(req.IPv4Data, req.IPv6Data); err != nil {
		return nil, err
	}
	if err := n.Config.CheckIPv6(); err != nil {
		return nil, err
	}
	return n, nil
}

// setOptions applies the user's -o options, in a fixed order so the same
// mistakes always give the same error.
func (n *Network) setOptions(opts map[string]string) error {
	m := modes[n.Config.Mode]
	for _, key := range slices.Sorted(maps.Keys(opts)) {
		value := opts[key]
		var err error
		switch {
		case key == OptMode: // read already
		case slices.Contains(m.options, key):
			err = n.mode.SetOption(key, value)
		default:
			var known bool
			if known, err = n.Config.SetOption(key, value); !known {
				err = unknownOption(key, n.Config.Mode)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unknownOption explains an option the mode does not take, naming the mode
// it belongs to when it is another mode's.
func unknownOption(key, mode string) error {
	accepted := strings.Join(modes[mode].accepted(), ", ")
	for _, other := range modeNames {
		if other != mode && slices.Contains(modes[other].options, key) {
			return errdefs.Errorf(ErrInvalid, "option %s applies to mode=%s, not mode=%s; mode=%s accepts: %s",
				key, other, mode, mode, accepted)
		}
	}
	return errdefs.Errorf(ErrInvalid, "unknown option %q for weft %s networks; accepted options are: %s", key, mode, accepted)
}

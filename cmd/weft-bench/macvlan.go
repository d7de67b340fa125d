package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// lanLink is the benchmark Docker host's second NIC, plugged into the lab
// switch: the parent of both macvlan networks (never the machine's own
// eth0, and not lab0, which the host itself needs).
const lanLink = "lan1"

// macvlanSides are the networks compared by the macvlan benchmark: weft's
// macvlan mode and Docker's built-in macvlan driver, both in macvlan bridge
// mode on the one parent lanLink, with addresses of the lab LAN
// (lab.DefaultSubnet, which the bench's lab uses) from disjoint ranges, so
// no two containers ever share an address. Only the driver (and IPAM)
// differs.
var macvlanSides = [2]side{
	{label: "weft", short: "mv-weft", network: "bench-mv-weft",
		create: []string{"-d", pluginName, "--ipam-driver", pluginName, "-o", "mode=macvlan", "-o", "parent=" + lanLink,
			"--subnet", "198.18.0.0/24", "--gateway", "198.18.0.1", "--ip-range", "198.18.0.192/27"}},
	{label: "built-in", short: "mv-builtin", network: "bench-mv-builtin",
		create: []string{"-d", "macvlan", "-o", "parent=" + lanLink,
			"--subnet", "198.18.0.0/24", "--gateway", "198.18.0.1", "--ip-range", "198.18.0.224/27"}},
}

// macvlan compares weft's macvlan mode with Docker's built-in macvlan
// driver (macvlanSides) on the benchmark Docker host: container start
// (startTimes) and TCP between two containers of one network (measureTCP,
// so the traffic goes from one macvlan child of lan1 to another inside the
// host). It plugs lanLink into the lab switch first and removes the
// containers, both networks and the link afterwards, also on failure.
func (b *bench) macvlan(ctx context.Context) (sec section, retErr error) {
	d, err := b.dockerHost(ctx)
	if err != nil {
		return section{}, err
	}
	removeLAN, err := b.addLANLink(ctx, d)
	defer func() {
		// On its own context: an interrupted run still cleans up.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := errors.Join(removeNetworks(cctx, d, macvlanSides), removeLAN(cctx)); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("macvlan cleanup: %w", err))
		}
	}()
	if err != nil {
		return section{}, err
	}
	if err := createNetworks(ctx, d, macvlanSides); err != nil {
		return section{}, err
	}
	ms, err := b.startTimes(ctx, d, macvlanSides[:])
	if err != nil {
		return section{}, err
	}
	r, err := b.measureTCP(ctx, d, macvlanSides)
	if err != nil {
		return section{}, err
	}
	notes := []string{fmt.Sprintf("macvlan: weft (-o mode=macvlan) against Docker's built-in macvlan driver, both in macvlan bridge mode "+
		"on one parent, %s (a veth of the Docker host plugged into the lab switch); TCP between two containers of the same network.", lanLink)}
	notes = append(notes, b.tcpNotes("macvlan TCP", r)...)
	notes = append(notes, b.startNote("macvlan container start", [2][]float64{ms[0], ms[1]}))
	return section{
		rows: []row{
			pairedRow("macvlan: TCP throughput, container to container", r.gbps[0], r.gbps[1], fmtGbps, throughputGoal),
			pairedRow("macvlan: TCP round trip", r.rtt[0], r.rtt[1], fmtMicros, nil),
			pairedRow("macvlan: container start (`docker run -d`)", ms[0], ms[1], fmtMS, startGoal),
		},
		notes: notes,
	}, nil
}

// addLANLink gives the Docker host the NIC lanLink: a veth whose other end
// is a port of the lab switch. The returned function removes it (deleting
// the switch end removes both); it is never nil and does nothing if the
// link was not made.
func (b *bench) addLANLink(ctx context.Context, d *lab.DockerHost) (remove func(context.Context) error, err error) {
	sw := "v-" + d.Name + "-lan"
	nothing := func(context.Context) error { return nil }
	b.logf("macvlan: plugging %s of %s into the lab switch (%s)", lanLink, d.Name, sw)
	if _, err := b.lab.RunSwitch(ctx, "ip", "link", "add", sw, "type", "veth", "peer", "name", lanLink, "netns", d.NetNS); err != nil {
		return nothing, err
	}
	remove = func(ctx context.Context) error {
		_, err := b.lab.RunSwitch(ctx, "ip", "link", "del", sw)
		return err
	}
	for _, cmd := range [][]string{{"ip", "link", "set", sw, "master", lab.SwitchBridge}, {"ip", "link", "set", sw, "up"}} {
		if _, err := b.lab.RunSwitch(ctx, cmd...); err != nil {
			return remove, err
		}
	}
	if _, err := d.Run(ctx, "ip", "link", "set", lanLink, "up"); err != nil {
		return remove, err
	}
	return remove, nil
}

// removeNetworks removes every container on the networks of sides, then the
// networks; networks that do not exist are skipped.
func removeNetworks(ctx context.Context, d *lab.DockerHost, sides [2]side) error {
	var errs []error
	for _, s := range sides {
		if _, err := d.Docker(ctx, "network", "inspect", "-f", "{{.Name}}", s.network); err != nil {
			if strings.Contains(err.Error(), "No such network") {
				continue // never created
			}
			errs = append(errs, err)
			continue
		}
		ids, err := d.Docker(ctx, "ps", "-aq", "--filter", "network="+s.network)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ids := strings.Fields(ids); len(ids) > 0 {
			if _, err := d.Docker(ctx, append([]string{"rm", "-f"}, ids...)...); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if _, err := d.Docker(ctx, "network", "rm", s.network); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

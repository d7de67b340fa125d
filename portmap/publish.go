package portmap

import "slices"

// Connectivity is what ProgramExternalConnectivity asks an endpoint to
// publish.
type Connectivity struct {
	// Ports is nil when dockerd sent no port map, which changes nothing;
	// an empty list withdraws what the endpoint published.
	Ports []Binding
	// NoProxy6to4 (dockerd's com.docker.network.driver.private.no_proxy_6to4)
	// says another endpoint of the container is its IPv6 gateway: this
	// one publishes on IPv4 only.
	NoProxy6to4 bool
}

// Request is one ProgramExternalConnectivity of an endpoint, with what the
// host publishes already.
type Request struct {
	// Ports are the bindings dockerd asked for (the container's -p).
	Ports []Binding
	// NoProxy6to4 is dockerd's no_proxy_6to4: another endpoint is the
	// container's IPv6 gateway.
	NoProxy6to4 bool
	Endpoint    Endpoint
	// Current is what the endpoint publishes now.
	Current []Binding
	// Siblings is what each of the container's other endpoints publishes.
	Siblings [][]Binding
	// Taken is what every other container publishes.
	Taken []Binding
}

// Plan is what the endpoint and its siblings publish after a Request.
type Plan struct {
	Ports    []Binding
	Siblings [][]Binding // in Request.Siblings' order
	Skipped  []Binding   // requested, not for this endpoint to publish
}

// Publish works out which families the endpoint serves, the bindings it
// publishes for them and their host ports, and takes those families from
// the container's other endpoints: each family is published from one
// endpoint, and a container never conflicts with itself.
//
// Families: dockerd's remote driver does not say which gateway an endpoint
// is, only no_proxy_6to4 when it is the IPv4 gateway and another endpoint
// the IPv6 one. Without it, the endpoint is the IPv6 gateway, and the IPv4
// gateway too unless another endpoint of the container publishes IPv4:
// dockerd takes a gateway role from an endpoint (and tells it) before it
// gives it to another, so that one still holds the role.
func Publish(r Request) (Plan, error) {
	fams := Families{IPv4: r.Endpoint.IPv4, IPv6: !r.NoProxy6to4}
	if !r.NoProxy6to4 && r.Endpoint.IPv4 && r.Endpoint.IPv6 {
		for _, s := range r.Siblings {
			if ServesIPv4(s) {
				fams.IPv4 = false
			}
		}
	}
	groups, skipped := Expand(r.Ports, fams, r.Endpoint)
	ours := append([]Binding(nil), r.Current...)
	for _, s := range r.Siblings {
		ours = append(ours, s...)
	}
	plan := Plan{Skipped: skipped}
	for _, g := range groups {
		if err := Choose(g, slices.Concat(r.Taken, plan.Ports), ours); err != nil {
			return Plan{}, err
		}
		plan.Ports = append(plan.Ports, g...)
	}
	for _, s := range r.Siblings {
		plan.Siblings = append(plan.Siblings, Drop(s, fams))
	}
	return plan, nil
}

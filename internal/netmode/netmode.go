// Package netmode is what the driver and the network modes (bridge,
// macvlan, vxlan) share: the options every mode has, the endpoint data a
// mode works on, the errors an option gets, and Host, the view of the
// driver a mode is given. Mode packages import it, never the driver.
package netmode

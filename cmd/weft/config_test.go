package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestPluginConfigLeastPrivilege: config.json asks Docker for what weft uses
// and nothing more; `docker plugin install` shows each of these to the user.
func TestPluginConfigLeastPrivilege(t *testing.T) {
	raw, err := os.ReadFile("../../config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Description     string
		PropagatedMount string
		Network         struct{ Type string }
		Linux           struct {
			Capabilities    []string
			AllowAllDevices bool
			Devices         []any
		}
		Mounts []struct {
			Name, Source, Destination string
			Options                   []string
			Settable                  []string
		}
		PidHost, IpcHost bool
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Linux.Capabilities, []string{"CAP_NET_ADMIN"}) {
		t.Errorf("capabilities %v, want only CAP_NET_ADMIN (Docker's default set already has CAP_NET_RAW)", cfg.Linux.Capabilities)
	}
	if cfg.Linux.AllowAllDevices || len(cfg.Linux.Devices) > 0 || cfg.PidHost || cfg.IpcHost {
		t.Error("config.json asks for devices or host pid/ipc namespaces weft does not use")
	}
	if cfg.Network.Type != "host" {
		t.Errorf("network type %q, want host: weft builds the host's networks", cfg.Network.Type)
	}
	if len(cfg.Mounts) != 1 || cfg.Mounts[0].Source != "/proc/sys/net" || cfg.Mounts[0].Destination != "/host/proc/sys/net" {
		t.Errorf("mounts %+v, want only the host's /proc/sys/net (weft writes nothing else of /proc)", cfg.Mounts)
	}
	for _, m := range cfg.Mounts {
		if len(m.Settable) > 0 {
			t.Errorf("mount %s is settable: dockerd forgets a mount's setting on `docker plugin upgrade`", m.Name)
		}
	}
	if cfg.PropagatedMount != "/var/lib/weft" {
		t.Errorf("propagatedmount %q, want /var/lib/weft: the state lives where dockerd keeps it through upgrades", cfg.PropagatedMount)
	}
	for _, mode := range []string{"bridge", "macvlan", "ipvlan", "VXLAN"} {
		if !strings.Contains(cfg.Description, mode) {
			t.Errorf("description %q does not mention %s", cfg.Description, mode)
		}
	}
	if strings.Contains(cfg.Description, "next") {
		t.Errorf("description %q promises what is already there", cfg.Description)
	}
}

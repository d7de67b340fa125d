package driver

import (
	"testing"

	"github.com/weftnet/weft/internal/vmlab"
)

// kernelModeTests are the tests that need link types this CI kernel lacks
// (ipvlan, 802.1q, dummy); they run, with the other modes' kernel tests,
// inside Debian's full cloud kernel in a VM (internal/vmlab).
const kernelModeTests = "^Test(Ipvlan|MacvlanIpvlanDualStack|VLANParent|TwoVLANsIsolated|NoParentIsInternal|MacvlanModes|MacvlanPassthru|HostShim|OneParent|VXLANAcrossHosts|EndpointLifecycle|NetworkLifecycle|RestoreAfterReboot)"

// TestKernelModesInVM boots the full kernel and runs kernelModeTests there.
// It skips only where qemu cannot run at all.
func TestKernelModesInVM(t *testing.T) {
	if vmlab.InVM() {
		t.Skip("this is the VM")
	}
	vmlab.SkipUnlessAvailable(t)
	vmlab.RunTestsWith(t, ".", kernelModeTests, vmlab.Spec{
		Modules:      []string{"ipvlan", "8021q", "macvlan", "vxlan", "dummy", "veth", "bridge", "br_netfilter"},
		HostCommands: []string{"ip", "bridge", "iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"},
	})
}

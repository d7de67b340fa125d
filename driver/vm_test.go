package driver

import (
	"testing"

	"github.com/weftnet/weft/internal/vmlab"
)

// kernelModeTests are the tests that need what this CI kernel lacks
// (ipvlan, 802.1q, dummy links, ESP); they run, with the other modes'
// kernel tests, inside Debian's full cloud kernel in a VM (internal/vmlab).
const kernelModeTests = "^Test(Ipvlan|MacvlanIpvlanDualStack|VLANParent|TwoVLANsIsolated|NoParentIsInternal|MacvlanModes|MacvlanPassthru|HostShim|OneParent|VXLANAcrossHosts|VXLANEncrypted|EndpointLifecycle|NetworkLifecycle|RestoreAfterReboot)"

// TestKernelModesInVM boots the full kernel and runs kernelModeTests there.
// It skips only where qemu cannot run at all.
func TestKernelModesInVM(t *testing.T) {
	if vmlab.InVM() {
		t.Skip("this is the VM")
	}
	vmlab.SkipUnlessAvailable(t)
	vmlab.RunTestsWith(t, ".", kernelModeTests, vmlab.Spec{
		Modules:      []string{"ipvlan", "8021q", "macvlan", "vxlan", "dummy", "veth", "bridge", "br_netfilter", "xfrm_user", "esp4", "xt_policy", "xt_u32"},
		HostCommands: []string{"ip", "bridge", "iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"},
	})
}

package vxlan

import (
	"strconv"

	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/store"
)

// On a swarm manager, weft's AllocateNetwork makes the choices every node's
// copy of a swarm network must share: its VNI, unique among the swarm's
// networks, and an encrypted network's key.

// kindVNI is the store kind of the VNIs this node, as a swarm manager,
// gave to swarm networks: VNI -> network id.
const kindVNI = "vnis"

// AddKey makes the key of a swarm network that asks for encryption without
// one, on the swarm manager (AllocateNetwork), so that every node's copy
// gets it in its options. A kernel without ESP refuses the network there,
// at `docker network create`.
func AddKey(h *nl.Handle, opts map[string]string) error {
	given, asked := opts[OptEncrypted]
	if !asked || opts[OptEncryptionKey] != "" {
		return nil
	}
	on, err := Encrypted(given)
	if err != nil || !on {
		return err
	}
	if err := esp.Probe(h); err != nil {
		return errdefs.Errorf(errdefs.Invalid, "option %s: %v; weft will not send this network's traffic in clear text", OptEncrypted, err)
	}
	key, err := esp.NewKey()
	if err != nil {
		return err
	}
	opts[OptEncryptionKey] = key.String()
	return nil
}

// ReserveVNI records vni for the network. A VNI the user chose must be
// free; otherwise the next free one from there is taken.
func ReserveVNI(st *store.Store, networkID string, vni int, chosen bool) (int, error) {
	err := st.Update(func(tx *store.Tx) error {
		for range MaxVNI {
			var owner string
			key := strconv.Itoa(vni)
			if tx.Get(kindVNI, key, &owner) != nil || owner == networkID {
				return tx.Put(kindVNI, key, networkID)
			}
			if chosen {
				return errdefs.Errorf(errdefs.Conflict, "invalid value \"%d\" for option %s: swarm network %s already uses it", vni, OptVNI, ifname.ShortID(owner))
			}
			vni = vni%MaxVNI + 1
		}
		return errdefs.Errorf(errdefs.Exhausted, "every VNI is in use")
	})
	return vni, err
}

// FreeVNIs releases the VNIs reserved for the network.
func FreeVNIs(st *store.Store, networkID string) error {
	return st.Update(func(tx *store.Tx) error {
		var free []string
		err := tx.ForEach(kindVNI, func(vni string, raw []byte) error {
			var owner string
			if err := store.Decode(raw, &owner); err == nil && owner == networkID {
				free = append(free, vni)
			}
			return nil
		})
		for _, vni := range free {
			if err == nil {
				err = tx.Delete(kindVNI, vni)
			}
		}
		return err
	})
}

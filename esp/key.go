// Package esp encrypts a weft VXLAN network's traffic between hosts with
// IPsec ESP in transport mode (AES-256-GCM, RFC 4106): each pair of VTEPs
// gets one security association per direction, and an output policy per
// peer sends the network's VXLAN packets through it. Every netlink call goes
// through internal/nl.
//
// The network's VXLAN device sends from one UDP source port of its own
// (SourcePort); the output policies match that port, so only this network's
// packets take its SAs, and other networks to the same hosts are untouched.
package esp

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
)

// KeyBytes is the length of a network key (AES-256).
const KeyBytes = 32

// Key is a network's master key. The SAs' keys are derived from it, one per
// direction between two hosts, so no two SAs ever share a key: GCM must not
// see one key under two sequence counters.
type Key [KeyBytes]byte

// NewKey returns a random key.
func NewKey() (Key, error) {
	var k Key
	_, err := rand.Read(k[:])
	return k, err
}

// ParseKey reads a key written as 64 hex digits.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeyBytes {
		return k, fmt.Errorf("want %d hex digits (%d random bytes, e.g. from `openssl rand -hex %d`)", 2*KeyBytes, KeyBytes, KeyBytes)
	}
	copy(k[:], b)
	return k, nil
}

// String writes the key as hex, the form ParseKey reads.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Algorithm is the kernel's name of the AEAD the SAs use; its key is the
// AES key followed by a 4-byte salt.
const (
	Algorithm = "rfc4106(gcm(aes))"
	icvBits   = 128
	saKeyLen  = 32 + 4
)

// sa is what one direction between two hosts needs: its SPI and key.
type sa struct {
	spi int
	key []byte
}

// deriveSA computes the SA from src to dst of the network with this VNI.
// Both hosts compute the same, so no key exchange is needed.
func deriveSA(k Key, vni int, src, dst netip.Addr) sa {
	info := "weft esp vni=" + strconv.Itoa(vni) + " src=" + src.String() + " dst=" + dst.String()
	out, err := hkdf.Key(sha256.New, k[:], nil, info, saKeyLen+4)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot produce
	}
	spi := binary.BigEndian.Uint32(out[saKeyLen:])
	if spi < 256 {
		spi += 256 // SPIs 1-255 are reserved (RFC 4303)
	}
	return sa{spi: int(spi), key: out[:saKeyLen]}
}

package recordings

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Keyring holds key-encryption keys by version. One version is active:
// new data keys are wrapped with it; every version can unwrap. Rotation
// adds a version and re-wraps data keys; audio is never re-encrypted.
type Keyring struct {
	keys   map[uint32]cipher.AEAD
	active uint32
}

// ErrUnknownKey means a data key was wrapped with a version the keyring
// does not hold.
var ErrUnknownKey = errors.New("recordings: key version not in the keyring")

// ParseKeyring reads "1:BASE64,2:BASE64" (32-byte keys, standard base64);
// the highest version is active unless "active=N" is given, e.g.
// "1:...,2:...,active=1". "@PATH" reads the same text from a file.
func ParseKeyring(s string) (*Keyring, error) {
	if path, ok := strings.CutPrefix(strings.TrimSpace(s), "@"); ok {
		// "@/etc/switchboard/keyring": the same text, from a file.
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("recordings: keyring file: %w", err)
		}
		s = strings.TrimSpace(string(b))
	}
	k := &Keyring{keys: map[uint32]cipher.AEAD{}}
	var active uint32
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if v, ok := strings.CutPrefix(part, "active="); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("recordings: keyring: active=%q is not a version", v)
			}
			active = uint32(n)
			continue
		}
		ver, b64, ok := strings.Cut(part, ":")
		n, err := strconv.ParseUint(ver, 10, 32)
		if !ok || err != nil || n == 0 {
			return nil, fmt.Errorf("recordings: keyring: entries look like VERSION:BASE64KEY with VERSION ≥ 1")
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("recordings: keyring: key version %d must be 32 bytes in base64", n)
		}
		if err := k.add(uint32(n), key); err != nil {
			return nil, err
		}
	}
	if len(k.keys) == 0 {
		return nil, errors.New("recordings: keyring is empty")
	}
	if active == 0 {
		active = slices.Max(k.Versions())
	}
	if _, ok := k.keys[active]; !ok {
		return nil, fmt.Errorf("recordings: keyring: active version %d is not in the keyring", active)
	}
	k.active = active
	return k, nil
}

func (k *Keyring) add(version uint32, key []byte) error {
	if _, dup := k.keys[version]; dup {
		return fmt.Errorf("recordings: keyring: version %d given twice", version)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	k.keys[version] = aead
	return nil
}

// Active is the version new data keys are wrapped with.
func (k *Keyring) Active() uint32 { return k.active }

// Versions lists the versions held, in order.
func (k *Keyring) Versions() []uint32 {
	vs := make([]uint32, 0, len(k.keys))
	for v := range k.keys {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Wrap seals dataKey with the active key. ad binds it to its recording
// (the recording's ID), so a wrapped key cannot be moved to another one.
// The result is nonce ‖ ciphertext ‖ tag.
func (k *Keyring) Wrap(dataKey, ad []byte) (version uint32, wrapped []byte, err error) {
	aead := k.keys[k.active]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(dataKey)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return 0, nil, fmt.Errorf("recordings: wrap nonce: %w", err)
	}
	return k.active, aead.Seal(nonce, nonce, dataKey, wrapAD(k.active, ad)), nil
}

// Unwrap opens a wrapped data key.
func (k *Keyring) Unwrap(version uint32, wrapped, ad []byte) ([]byte, error) {
	aead, ok := k.keys[version]
	if !ok {
		return nil, ErrUnknownKey
	}
	if len(wrapped) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrTampered
	}
	ns := aead.NonceSize()
	key, err := aead.Open(nil, wrapped[:ns], wrapped[ns:], wrapAD(version, ad))
	if err != nil {
		return nil, ErrTampered
	}
	return key, nil
}

// Rewrap moves a wrapped data key to the active version. A key already
// there is returned as is.
func (k *Keyring) Rewrap(version uint32, wrapped, ad []byte) (uint32, []byte, error) {
	if version == k.active {
		return version, wrapped, nil
	}
	key, err := k.Unwrap(version, wrapped, ad)
	if err != nil {
		return 0, nil, err
	}
	defer clear(key)
	return k.Wrap(key, ad)
}

// wrapAD binds the key version too, so a wrapped key cannot be replayed
// under another version's label.
func wrapAD(version uint32, ad []byte) []byte {
	out := binary.BigEndian.AppendUint32([]byte("switchboard data key v1 "), version)
	return append(out, ad...)
}

// Seal encrypts a small secret at rest (a trunk's password) with the
// active key: version(4) ‖ nonce ‖ ciphertext ‖ tag. ad binds it to what
// it belongs to.
func (k *Keyring) Seal(secret, ad []byte) ([]byte, error) {
	v, wrapped, err := k.Wrap(secret, append([]byte("secret "), ad...))
	if err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint32(nil, v), wrapped...), nil
}

// Open decrypts what Seal sealed, with whichever version sealed it.
func (k *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 4 {
		return nil, ErrTampered
	}
	return k.Unwrap(binary.BigEndian.Uint32(sealed), sealed[4:], append([]byte("secret "), ad...))
}

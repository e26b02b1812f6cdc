package callctl

import sb "github.com/switchboard-voice/switchboard"

// canCarry reports whether an operator's port can take a caller speaking
// c, by switching codec if it must.
func canCarry(operator sb.MediaPort, c sb.Codec) bool {
	if ch, ok := operator.(sb.CodecChooser); ok && (ch.CanUse(c.Name) || c.IsG711() && (ch.CanUse("PCMU") || ch.CanUse("PCMA"))) {
		return true
	}
	return sb.Bridgeable(c, operator.Codec())
}

// matchCodec makes an operator's port speak what the caller's leg does:
// Opus when the caller speaks Opus; PCMU for any G.711 caller, which is
// what browsers send unless told otherwise, so a G.711 call never depends
// on the page switching codecs (an A-law caller is converted by the
// bridge's byte map). It fails with EINVALID when the two cannot be
// bridged without transcoding.
func matchCodec(caller, operator sb.MediaPort) error {
	want := caller.Codec()
	if ch, ok := operator.(sb.CodecChooser); ok {
		if !want.IsG711() || !ch.UseCodec("PCMU") {
			ch.UseCodec(want.Name)
		}
	}
	if got := operator.Codec(); !sb.Bridgeable(want, got) {
		return sb.Errorf(sb.EINVALID, "no common codec: the caller speaks %s and the operator's connection does not carry it (no transcoding)", want.Name)
	}
	return nil
}

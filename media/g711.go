package media

// G.711 (ITU-T G.711) μ-law and A-law. The relay carries G.711 unchanged;
// these tables exist for the one case where the two legs negotiated
// different laws, and for tests that need to hear what arrived.

var (
	ulawToAlaw [256]byte
	alawToUlaw [256]byte
)

func init() {
	for i := 0; i < 256; i++ {
		ulawToAlaw[i] = LinearToAlaw(UlawToLinear(byte(i)))
		alawToUlaw[i] = LinearToUlaw(AlawToLinear(byte(i)))
	}
}

// UlawToAlaw converts μ-law samples to A-law in place.
func UlawToAlaw(b []byte) {
	for i, v := range b {
		b[i] = ulawToAlaw[v]
	}
}

// AlawToUlaw converts A-law samples to μ-law in place.
func AlawToUlaw(b []byte) {
	for i, v := range b {
		b[i] = alawToUlaw[v]
	}
}

// UlawToLinear decodes one μ-law sample to 16-bit linear PCM.
func UlawToLinear(u byte) int16 {
	u = ^u
	t := (int(u&0x0f) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// LinearToUlaw encodes one 16-bit linear PCM sample as μ-law.
func LinearToUlaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// AlawToLinear decodes one A-law sample to 16-bit linear PCM.
func AlawToLinear(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0f) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// LinearToAlaw encodes one 16-bit linear PCM sample as A-law.
func LinearToAlaw(s int16) byte {
	v := int(s)
	mask := 0xd5
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	if v > 32767 {
		v = 32767
	}
	var seg int
	for seg = 0; seg < 8; seg++ {
		if v <= 0xff<<seg {
			break
		}
	}
	var a int
	if seg >= 8 {
		a = 0x7f
	} else {
		a = seg << 4
		if seg < 2 {
			a |= (v >> 4) & 0x0f
		} else {
			a |= (v >> (seg + 3)) & 0x0f
		}
	}
	return byte(a ^ mask)
}

// silenceLevel is the loudest sample (of 32767) that still counts as
// silence: about −50 dBFS, under line noise.
const silenceLevel = 100

// Silent reports whether a G.711 frame (A-law when alaw) is silence.
func Silent(payload []byte, alaw bool) bool {
	decode := UlawToLinear
	if alaw {
		decode = AlawToLinear
	}
	for _, b := range payload {
		if s := decode(b); s > silenceLevel || s < -silenceLevel {
			return false
		}
	}
	return true
}

package secretbox

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/scrypt"
)

// KDF names a key-derivation function and its cost. Its text form
// ("argon2id:m=262144,t=3,p=2") is stored beside the salt so that a later
// build can raise the cost for new seals and still open old ones.
type KDF struct {
	Alg string // "argon2id", or "scrypt" for databases sealed before it
	// argon2id: memory in KiB, passes, lanes. scrypt: N, r, p.
	Memory, Time, Threads uint32
	N, R, P               int
}

// DefaultKDF is what new seals use: Argon2id (RFC 9106) with 256 MiB, 3
// passes and 2 lanes, about 0.3 s on a 2-core machine (BenchmarkDerive).
// An operator pays it once per command; a guesser pays it per guess, with
// 256 MiB of memory per guess in flight.
var DefaultKDF = KDF{Alg: "argon2id", Memory: 256 * 1024, Time: 3, Threads: 2}

// LegacyKDF is the scrypt cost used before parameters were stored; a
// database with no stored parameters was sealed with it.
var LegacyKDF = KDF{Alg: "scrypt", N: 1 << 15, R: 8, P: 1}

// MinMemoryKiB is the least memory cost accepted from a database: stored
// parameters are not trusted to be sane, and a lowered cost would make a
// leaked file cheap to attack.
const MinMemoryKiB = 64 * 1024

func (k KDF) String() string {
	if k.Alg == "scrypt" {
		return fmt.Sprintf("scrypt:N=%d,r=%d,p=%d", k.N, k.R, k.P)
	}
	return fmt.Sprintf("argon2id:m=%d,t=%d,p=%d", k.Memory, k.Time, k.Threads)
}

// Weak reports whether k costs a guesser less than DefaultKDF does.
func (k KDF) Weak() bool {
	return k.Alg != DefaultKDF.Alg || k.Memory < DefaultKDF.Memory || k.Time < DefaultKDF.Time
}

// ParseKDF reads the stored text form; empty means LegacyKDF.
func ParseKDF(s string) (KDF, error) {
	if s == "" {
		return LegacyKDF, nil
	}
	alg, params, ok := strings.Cut(s, ":")
	vals := map[string]uint64{}
	for _, kv := range strings.Split(params, ",") {
		name, v, found := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !found || err != nil {
			ok = false
			break
		}
		vals[name] = n
	}
	bad := fmt.Errorf("secretbox: key-derivation parameters %q are not valid", s)
	switch {
	case !ok:
		return KDF{}, bad
	case alg == "argon2id" && len(vals) == 3:
		k := KDF{Alg: alg, Memory: uint32(vals["m"]), Time: uint32(vals["t"]), Threads: uint32(vals["p"])}
		if k.Memory < MinMemoryKiB || k.Memory > 4<<20 || k.Time < 1 || k.Time > 100 || k.Threads < 1 || k.Threads > 64 {
			return KDF{}, bad
		}
		return k, nil
	case alg == "scrypt" && len(vals) == 3:
		k := KDF{Alg: alg, N: int(vals["N"]), R: int(vals["r"]), P: int(vals["p"])}
		if k != LegacyKDF {
			return KDF{}, bad // only the one cost ever used
		}
		return k, nil
	}
	return KDF{}, bad
}

func (k KDF) derive(secret, salt []byte) ([]byte, error) {
	switch k.Alg {
	case "argon2id":
		return argon2.IDKey(secret, salt, k.Time, k.Memory, uint8(k.Threads), 32), nil
	case "scrypt":
		return scrypt.Key(secret, salt, k.N, k.R, k.P, 32)
	}
	return nil, fmt.Errorf("secretbox: unknown key-derivation function %q", k.Alg)
}

// Package secretboxtest makes the key derivation cheap inside a test binary.
package secretboxtest

import "github.com/caio-licensing/caio-licensing/shared/secretbox"

// CheapKDF lowers secretbox.DefaultKDF to the least a database may state
// (64 MiB, one pass, one lane) for the rest of this test process: tests that
// seal dozens of databases do not test the cost. secretbox's own tests and
// BenchmarkDerive keep the real default; processes started by tests (the
// CLI, the functions) always use it.
func CheapKDF() {
	secretbox.DefaultKDF = secretbox.KDF{Alg: "argon2id", Memory: secretbox.MinMemoryKiB, Time: 1, Threads: 1}
}

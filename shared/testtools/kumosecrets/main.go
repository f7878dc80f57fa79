//go:build ignore

// The Secrets Manager emulator for tests: kumo (github.com/sivchari/kumo,
// a Go AWS emulator) built with its Secrets Manager service alone. `make
// test-tools` copies this file into kumo's own module at the pinned
// version and builds it there (its packages are internal); the full kumo
// binary takes six minutes to build on two cores, this one seconds.
package main

import (
	"flag"
	"log"

	"github.com/sivchari/kumo/internal/server"
	_ "github.com/sivchari/kumo/internal/service/secretsmanager"
)

func main() {
	addr := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 4566, "port to listen on")
	flag.Parse()
	cfg := server.DefaultConfig()
	cfg.Host, cfg.Port = *addr, *port
	if err := server.New(cfg).Run(); err != nil {
		log.Fatal(err)
	}
}

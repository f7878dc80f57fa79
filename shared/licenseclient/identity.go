package licenseclient

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/instanceid"
)

// Where an instance's id comes from when it is not given: an instance that
// restarts under the same id takes back its own seat rather than a new one
// (a fleet restarting daily under fresh ids needs seats for every id until
// their leases run out).
const (
	// FromState: generated once and kept in the state directory (the
	// default): a restart with the same state directory is the same
	// instance.
	FromState = ""
	// FromHostname: the host's name (a VM, or a container whose hostname
	// is stable).
	FromHostname = "hostname"
	// FromMachineID: derived from /etc/machine-id (systemd's), never the
	// id itself: systemd asks that it not be exposed, so it is hashed with
	// an application key as sd_id128_get_machine_app_specific does.
	FromMachineID = "machine-id"
	// FromEnvPrefix names an environment variable (env:POD_NAME, for a
	// Kubernetes StatefulSet, whose pod names are stable).
	FromEnvPrefix = "env:"
)

// instanceIDFile is the id kept in the state directory.
const instanceIDFile = "instance-id"

// machineIDPath is systemd's machine id (a variable for the tests).
var machineIDPath = "/etc/machine-id"

// InstanceID returns this instance's id from source (FromState,
// FromHostname, FromMachineID or env:NAME), checked by the same rules as
// the server's. getenv reads the environment (os.Getenv).
func InstanceID(source, stateDir string, getenv func(string) string) (string, error) {
	var id string
	switch {
	case source == FromState:
		return stateInstanceID(stateDir)
	case source == FromHostname:
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("cannot read the host name: %v", err)
		}
		id = h
	case source == FromMachineID:
		b, err := os.ReadFile(machineIDPath)
		m := strings.TrimSpace(string(b))
		if err != nil || m == "" {
			return "", fmt.Errorf("cannot read %s (machine-id needs systemd's machine id): use another --instance-id-from", machineIDPath)
		}
		mac := hmac.New(sha256.New, []byte(m))
		mac.Write([]byte("caio-licensing instance id"))
		id = "machine-" + hex.EncodeToString(mac.Sum(nil)[:16])
	case strings.HasPrefix(source, FromEnvPrefix) && len(source) > len(FromEnvPrefix):
		name := strings.TrimPrefix(source, FromEnvPrefix)
		if id = getenv(name); id == "" {
			return "", fmt.Errorf("--instance-id-from %s: $%s is not set", source, name)
		}
	default:
		return "", fmt.Errorf("--instance-id-from %q: use hostname, machine-id or env:NAME", source)
	}
	id = instanceid.Normalize(id)
	if err := instanceid.Check(id); err != nil {
		return "", fmt.Errorf("the instance id from %s is not usable: %v", source, err)
	}
	return id, nil
}

// stateInstanceID reads the id kept in stateDir, generating it on first
// use. Two processes starting together agree: the file is created whole
// with O_EXCL, and the one that loses reads the winner's.
func stateInstanceID(stateDir string) (string, error) {
	if stateDir == "" {
		return "", errors.New("an instance id is needed: give --instance-id, --instance-id-from, or a --state-dir to keep one in")
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("cannot create the state directory: %v", err)
	}
	path := filepath.Join(stateDir, instanceIDFile)
	if id, err := readInstanceID(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	b := make([]byte, 12)
	rand.Read(b)
	id := "caio-" + hex.EncodeToString(b)
	// Created whole or not at all, and never over an existing id: of two
	// processes starting together, the second reads the first's.
	err := atomicfile.Create(path, []byte(id+"\n"), 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return readInstanceID(path)
	case err != nil:
		return "", fmt.Errorf("cannot keep the instance id in the state directory: %v", err)
	}
	return id, nil
}

// readInstanceID reads a kept id, never through a link, and checks it: a
// file someone changed to an id that is not one is refused, not repaired.
func readInstanceID(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return "", fmt.Errorf("%s is a symbolic link, which is never followed: remove it (this instance then takes a new seat), or give --instance-id", path)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, instanceid.MaxLen+2))
	if err != nil {
		return "", err
	}
	id := instanceid.Normalize(strings.TrimSuffix(string(b), "\n"))
	if err := instanceid.Check(id); err != nil {
		return "", fmt.Errorf("%s does not hold a usable instance id (%v): remove it to make a new one (this instance then takes a new seat)", path, err)
	}
	return id, nil
}

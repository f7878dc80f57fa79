package licensing

import (
	"context"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// VerifyKey checks a key's signature offline and returns its claims. With
// configured public keys it needs no store at all.
func (s *Service) VerifyKey(ctx context.Context, key string) (licensekey.Claims, error) {
	if s.keys.pinned != nil || s.cfg.Store == nil {
		if s.keys.pinned == nil {
			return licensekey.Claims{}, Errorf(CodePublicKeyRequired, "no public key: set CAIO_LICENSE_PUBLIC_KEY (see 'manage-licenses public-key') or use --db")
		}
		return verify(key, s.keys.pinned)
	}
	var claims licensekey.Claims
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		keys, err := s.keys.verificationKeys(tx)
		if err != nil {
			return err
		}
		claims, err = verify(key, keys)
		return err
	})
	return claims, err
}

package licensing

import "context"

// SetStatus suspends, revokes or reinstates a license. Revocation is final.
func (s *Service) SetStatus(ctx context.Context, ref string, to Status, reason string) (License, error) {
	kinds := map[Status]string{StatusSuspended: EventLicenseSuspended, StatusRevoked: EventLicenseRevoked, StatusActive: EventLicenseReinstated}
	kind, ok := kinds[to]
	if !ok {
		return License{}, badRequest("cannot set status %q", to)
	}
	if err := validateReason(reason); err != nil {
		return License{}, err
	}
	now := s.now()
	var out License
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		lic, err := s.resolveLicense(tx, ref)
		if err != nil {
			return err
		}
		switch {
		case lic.Status == to:
			return Errorf(CodeBadRequest, "license %s is already %s", lic.ID, to)
		case lic.Status == StatusRevoked:
			return Errorf(CodeRevoked, "license %s is revoked, which is final: generate a new license", lic.ID)
		}
		lic.Status, lic.UpdatedAt = to, now
		if err := tx.UpdateLicense(lic); err != nil {
			return err
		}
		out = lic
		return s.event(tx, now, kind, Event{CustomerID: lic.CustomerID, LicenseID: lic.ID, Detail: reason})
	})
	return out, err
}

func validateReason(reason string) error {
	if reason == "" {
		return nil
	}
	if err := validateName(reason); err != nil {
		return badRequest("reason must be at most %d printable characters", MaxNameLen)
	}
	return nil
}

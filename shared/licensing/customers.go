package licensing

import "context"

// AddCustomer records a new customer. email may be empty.
func (s *Service) AddCustomer(ctx context.Context, id, name, email string) (Customer, error) {
	if err := validateCustomerID(id); err != nil {
		return Customer{}, err
	}
	if err := validateName(name); err != nil {
		return Customer{}, err
	}
	if email != "" {
		if err := ValidateEmail(email); err != nil {
			return Customer{}, err
		}
	}
	now := s.now()
	c := Customer{ID: id, Name: name, Email: email, CreatedAt: now, UpdatedAt: now}
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		if err := tx.InsertCustomer(c); err != nil {
			if ErrorCode(err) == CodeAlreadyExists {
				return Errorf(CodeAlreadyExists, "customer %s already exists: use 'manage-licenses update-customer' to change it", id)
			}
			return err
		}
		return s.event(tx, now, EventCustomerCreated, Event{CustomerID: id, Detail: name})
	})
	return c, err
}

// CustomerUpdate holds the fields to change; nil leaves a field as it is.
type CustomerUpdate struct {
	Name  *string
	Email *string
}

// UpdateCustomer changes a customer's name or email.
func (s *Service) UpdateCustomer(ctx context.Context, id string, u CustomerUpdate) (Customer, error) {
	if u.Name == nil && u.Email == nil {
		return Customer{}, Errorf(CodeBadRequest, "nothing to change: pass --name or --email")
	}
	if u.Name != nil {
		if err := validateName(*u.Name); err != nil {
			return Customer{}, err
		}
	}
	if u.Email != nil && *u.Email != "" {
		if err := ValidateEmail(*u.Email); err != nil {
			return Customer{}, err
		}
	}
	var c Customer
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		var err error
		if c, err = s.customer(tx, id); err != nil {
			return err
		}
		if u.Name != nil {
			c.Name = *u.Name
		}
		if u.Email != nil {
			c.Email = *u.Email
		}
		c.UpdatedAt = s.now()
		if err := tx.UpdateCustomer(c); err != nil {
			return err
		}
		return s.event(tx, c.UpdatedAt, EventCustomerUpdated, Event{CustomerID: id})
	})
	return c, err
}

// Customer returns one customer.
func (s *Service) Customer(ctx context.Context, id string) (Customer, error) {
	var c Customer
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		c, err = s.customer(tx, id)
		return err
	})
	return c, err
}

func (s *Service) customer(tx Tx, id string) (Customer, error) {
	c, err := tx.Customer(id)
	if ErrorCode(err) == CodeNotFound {
		return c, Errorf(CodeNotFound, "customer %s not found: add it with 'manage-licenses add-customer %s NAME'", id, id)
	}
	return c, err
}

// Customers lists all customers.
func (s *Service) Customers(ctx context.Context) ([]Customer, error) {
	var out []Customer
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.Customers()
		return err
	})
	return out, err
}

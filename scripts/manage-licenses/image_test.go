package main_test

import (
	"bytes"
	"image"
	_ "image/jpeg"
	_ "image/png"
)

func decodeImage(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}

package image

// The JSON schemas Glance serves under /v2/schemas. Clients fetch them:
// python-openstackclient validates images against /v2/schemas/image
// (through warlock), so they follow glance/api/v2/images.py and
// image_members.py, with Glance's default schema-image.json properties.

const uuidPattern = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"

func nullableEnum(values []string) []any {
	out := []any{nil}
	for _, v := range values {
		out = append(out, v)
	}
	return out
}

// imageSchemaProperties are Glance's base image properties plus the
// custom properties of its default schema-image.json (is_base false).
func imageSchemaProperties() map[string]any {
	ro := func(typ any, desc string) map[string]any {
		return map[string]any{"type": typ, "readOnly": true, "description": desc}
	}
	custom := func(desc string) map[string]any {
		return map[string]any{"type": "string", "description": desc, "is_base": false}
	}
	nullStr := []any{"null", "string"}
	return map[string]any{
		"id":         map[string]any{"type": "string", "description": "An identifier for the image", "pattern": uuidPattern},
		"name":       map[string]any{"type": nullStr, "description": "Descriptive name for the image", "maxLength": 255},
		"status":     map[string]any{"type": "string", "readOnly": true, "description": "Status of the image", "enum": []any{"queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"}},
		"visibility": map[string]any{"type": "string", "description": "Scope of image accessibility", "enum": []any{"community", "public", "private", "shared"}},
		"protected":  map[string]any{"type": "boolean", "description": "If true, image will not be deletable."},
		"os_hidden":  map[string]any{"type": "boolean", "description": "If true, image will not appear in default image list response."},
		"checksum":   map[string]any{"type": nullStr, "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32},
		"os_hash_algo": map[string]any{"type": nullStr, "readOnly": true, "description": "Algorithm to calculate the os_hash_value",
			"maxLength": 64},
		"os_hash_value": map[string]any{"type": nullStr, "readOnly": true,
			"description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128},
		"owner":            map[string]any{"type": nullStr, "description": "Owner of the image", "maxLength": 255},
		"size":             ro([]any{"null", "integer"}, "Size of image file in bytes"),
		"virtual_size":     ro([]any{"null", "integer"}, "Virtual size of image in bytes"),
		"container_format": map[string]any{"type": nullStr, "description": "Format of the container", "enum": nullableEnum(containerFormats)},
		"disk_format":      map[string]any{"type": nullStr, "description": "Format of the disk", "enum": nullableEnum(diskFormats)},
		"created_at":       ro("string", "Date and time of image registration"),
		"updated_at":       ro("string", "Date and time of the last image modification"),
		"tags": map[string]any{"type": "array", "description": "List of strings related to the image",
			"items": map[string]any{"type": "string", "maxLength": 255}},
		"direct_url": ro("string", "URL to access the image file kept in external store"),
		"min_ram":    map[string]any{"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
		"min_disk":   map[string]any{"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
		"self":       ro("string", "An image self url"),
		"file":       ro("string", "An image file url"),
		"stores": ro("string", "Store in which image data resides.  Only present when the operator has enabled multiple stores.  "+
			"May be a comma-separated list of store identifiers."),
		"schema": ro("string", "An image schema url"),
		"locations": map[string]any{
			"type": "array",
			"items": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"url":      map[string]any{"type": "string", "maxLength": 255},
					"metadata": map[string]any{"type": "object"},
				},
				"required": []any{"url", "metadata"},
			},
			"description": "A set of URLs to access the image file kept in external store",
		},
		// Glance's default schema-image.json.
		"kernel_id": map[string]any{"type": nullStr, "pattern": uuidPattern, "is_base": false,
			"description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."},
		"ramdisk_id": map[string]any{"type": nullStr, "pattern": uuidPattern, "is_base": false,
			"description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."},
		"instance_uuid": custom("Metadata which can be used to record which instance this image is associated with. " +
			"(Informational only, does not create an instance snapshot.)"),
		"architecture": custom("Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"),
		"os_distro": custom("Common name of operating system distribution as specified in " +
			"https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"),
		"os_version":  custom("Operating system version as specified by the distributor."),
		"description": custom("A human-readable string describing this image."),
		"cinder_encryption_key_id": custom("Identifier in the OpenStack Key Management Service for the encryption key for the " +
			"Block Storage Service to use when mounting a volume created from this image"),
		"cinder_encryption_key_deletion_policy": map[string]any{"type": "string", "is_base": false,
			"enum":        []any{"on_image_deletion", "do_not_delete"},
			"description": "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action"},
	}
}

// imageSchema is GET /v2/schemas/image: a permissive schema whose
// additional properties are strings.
func imageSchema() map[string]any {
	return map[string]any{
		"name":                 "image",
		"properties":           imageSchemaProperties(),
		"additionalProperties": map[string]any{"type": "string"},
		"links": []any{
			map[string]any{"rel": "self", "href": "{self}"},
			map[string]any{"rel": "enclosure", "href": "{file}"},
			map[string]any{"rel": "describedby", "href": "{schema}"},
		},
	}
}

// collectionSchema wraps an item schema as Glance's CollectionSchema does.
func collectionSchema(name string, item map[string]any) map[string]any {
	return map[string]any{
		"name": name,
		"properties": map[string]any{
			name:     map[string]any{"type": "array", "items": item},
			"first":  map[string]any{"type": "string"},
			"next":   map[string]any{"type": "string"},
			"schema": map[string]any{"type": "string"},
		},
		"links": []any{
			map[string]any{"rel": "first", "href": "{first}"},
			map[string]any{"rel": "next", "href": "{next}"},
			map[string]any{"rel": "describedby", "href": "{schema}"},
		},
	}
}

// memberSchema is GET /v2/schemas/member.
func memberSchema() map[string]any {
	return map[string]any{
		"name": "member",
		"properties": map[string]any{
			"member_id":  map[string]any{"type": "string", "description": "An identifier for the image member (tenantId)"},
			"image_id":   map[string]any{"type": "string", "description": "An identifier for the image", "pattern": uuidPattern},
			"created_at": map[string]any{"type": "string", "description": "Date and time of image member creation"},
			"updated_at": map[string]any{"type": "string", "description": "Date and time of last modification of image member"},
			"status": map[string]any{"type": "string", "description": "The status of this image member",
				"enum": []any{"pending", "accepted", "rejected"}},
			"schema": map[string]any{"type": "string", "readOnly": true},
		},
		"additionalProperties": false,
	}
}

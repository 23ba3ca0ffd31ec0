// SPDX-License-Identifier: Apache-2.0
/*
 * api/parse_cpu.c: PUT /cpu-config, Firecracker's custom CPU template for
 * x86_64 (swagger: CpuConfig, CpuidLeafModifier, CpuidRegisterModifier,
 * MsrModifier). Each register modifier's bitmap is "0b" followed by one
 * character per bit, most significant first: '0' clears the bit, '1' sets
 * it, 'x' leaves it alone; '_' may separate groups. It becomes a (mask,
 * value) pair: new = (old & ~mask) | (value & mask). Leaves, subleaves and
 * MSR addresses are strings in hex ("0x1"), binary ("0b1") or decimal, or
 * plain JSON integers. kvm_capabilities is accepted only empty (kiln does
 * not change KVM capabilities); the aarch64 fields only empty.
 */
#include "api/config_int.h"
#include "api/parse_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct bits {
	uint64_t mask, value;
};

/* "0x..", "0b.." or decimal digits, no sign or spaces, <= max */
static int parse_number_str(const char *s, uint64_t max, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
		base = 2, s += 2;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -EINVAL;
		if (d >= base || v > (max - d) / base)
			return -EINVAL;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* CFG_CUSTOM: a uint32_t given as a number string or a JSON integer */
static int parse_u32(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	uint64_t x;

	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= (json_int_t)UINT32_MAX) {
		*(uint32_t *)slot = (uint32_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
	    parse_number_str(json_string_value(v), UINT32_MAX, &x) == 0) {
		*(uint32_t *)slot = (uint32_t)x;
		return 0;
	}
	return errf(e, EINVAL,
	            "%s must be a 32-bit number, as an integer or a string in hex (\"0x1f\"), "
	            "binary (\"0b101\") or decimal",
	            where);
}

/* "0b" + `width` characters of 0/1/x, underscores ignored */
static int parse_bitmap(json_t *v, struct bits *out, unsigned width, const char *where,
                        struct errbuf *e)
{
	const char *s = json_string_value(v);
	struct bits b = {0, 0};
	unsigned n = 0;

	if (!s || strncmp(s, "0b", 2) != 0)
		goto bad;
	for (s += 2; *s; s++) {
		if (*s == '_')
			continue;
		if ((*s != '0' && *s != '1' && *s != 'x') || ++n > width)
			goto bad;
		b.mask <<= 1;
		b.value <<= 1;
		if (*s != 'x')
			b.mask |= 1;
		if (*s == '1')
			b.value |= 1;
	}
	if (n != width || strlen(json_string_value(v)) != json_string_length(v))
		goto bad;
	*out = b;
	return 0;
bad:
	return errf(e, EINVAL,
	            "%s must be a string \"0b\" followed by %u characters '0', '1' or 'x' "
	            "(most significant bit first)",
	            where, width);
}

static int parse_bitmap32(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return parse_bitmap(v, slot, 32, where, e);
}

static int parse_bitmap64(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return parse_bitmap(v, slot, 64, where, e);
}

/* CFG_CUSTOM: keeps a borrowed reference to an array, walked afterwards */
static int keep_array(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	if (!json_is_array(v))
		return errf(e, EINVAL, "%s must be an array", where);
	*(json_t **)slot = v;
	return 0;
}

/* ----------------------------------------------------------------- CPUID */

static const char *const reg_names[] = {"eax", "ebx", "ecx", "edx"};

struct reg_mod {
	int reg;
	struct bits bits;
};

static const struct cfg_field reg_fields[] = {
        {.name = "register",
         .kind = CFG_ENUM,
         .required = true,
         .off = offsetof(struct reg_mod, reg),
         .names = reg_names,
         .nr_names = ARRAY_SIZE(reg_names)},
        {.name = "bitmap",
         .kind = CFG_CUSTOM,
         .required = true,
         .off = offsetof(struct reg_mod, bits),
         .parse = parse_bitmap32},
};

struct leaf_mod {
	uint32_t leaf, subleaf, flags;
	json_t *modifiers;
};

static const struct cfg_field leaf_fields[] = {
        {.name = "leaf",
         .kind = CFG_CUSTOM,
         .required = true,
         .off = offsetof(struct leaf_mod, leaf),
         .parse = parse_u32},
        {.name = "subleaf",
         .kind = CFG_CUSTOM,
         .required = true,
         .off = offsetof(struct leaf_mod, subleaf),
         .parse = parse_u32},
        {.name = "flags",
         .kind = CFG_U32,
         .required = true,
         .off = offsetof(struct leaf_mod, flags),
         .max = UINT32_MAX},
        {.name = "modifiers",
         .kind = CFG_CUSTOM,
         .required = true,
         .off = offsetof(struct leaf_mod, modifiers),
         .parse = keep_array},
};

/* calls fn(element, "<where>[i]", ctx, e) on each element of the array `v` */
static int each_element(json_t *v, const char *where,
                        int (*fn)(json_t *j, const char *at, void *ctx, struct errbuf *e),
                        void *ctx, struct errbuf *e)
{
	char at[CFG_WHERE_MAX];
	size_t i;
	json_t *j;
	int ret;

	if (!json_is_array(v))
		return errf(e, EINVAL, "%s must be an array", where);
	json_array_foreach(v, i, j)
	{
		snprintf(at, sizeof(at), "%.100s[%zu]", where, i);
		if ((ret = fn(j, at, ctx, e)) < 0)
			return ret;
	}
	return 0;
}

struct leaf_ctx {
	struct cpu_config *c;
	struct leaf_mod l;
};

/* one CpuidRegisterModifier of the leaf in ctx: one cpuid_modifier */
static int parse_reg(json_t *j, const char *where, void *ctx, struct errbuf *e)
{
	struct leaf_ctx *lc = ctx;
	struct cpu_config *c = lc->c;
	struct reg_mod r = {0};
	int ret = cfg_fields_parse(j, where, reg_fields, ARRAY_SIZE(reg_fields), &r, e);

	if (ret < 0)
		return ret;
	if (c->nr_cpuid == CPU_CFG_MAX_MODIFIERS)
		return errf(e, EINVAL, "cpu-config: at most %d CPUID register modifiers",
		            CPU_CFG_MAX_MODIFIERS);
	c->cpuid[c->nr_cpuid++] = (struct cpuid_modifier){
	        .leaf = lc->l.leaf,
	        .subleaf = lc->l.subleaf,
	        .flags = lc->l.flags,
	        .reg = (uint8_t)r.reg,
	        .mask = (uint32_t)r.bits.mask,
	        .value = (uint32_t)r.bits.value,
	};
	return 0;
}

/* one CpuidLeafModifier */
static int parse_leaf(json_t *j, const char *where, void *c, struct errbuf *e)
{
	struct leaf_ctx lc = {.c = c};
	char at[CFG_WHERE_MAX];
	int ret = cfg_fields_parse(j, where, leaf_fields, ARRAY_SIZE(leaf_fields), &lc.l, e);

	if (ret < 0)
		return ret;
	return each_element(lc.l.modifiers, cfg_where(at, where, "modifiers"), parse_reg, &lc, e);
}

/* CFG_CUSTOM over the whole struct cpu_config */
static int parse_cpuid_modifiers(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return each_element(v, where, parse_leaf, slot, e);
}

/* ------------------------------------------------------------------- MSRs */

struct msr_mod {
	uint32_t addr;
	struct bits bits;
};

static const struct cfg_field msr_fields[] = {
        {.name = "addr",
         .kind = CFG_CUSTOM,
         .required = true,
         .off = offsetof(struct msr_mod, addr),
         .parse = parse_u32},
        {.name = "bitmap",
         .kind = CFG_CUSTOM,
         .required = true,
         .off = offsetof(struct msr_mod, bits),
         .parse = parse_bitmap64},
};

static int parse_msr(json_t *j, const char *where, void *ctx, struct errbuf *e)
{
	struct cpu_config *c = ctx;
	struct msr_mod m = {0};
	int ret = cfg_fields_parse(j, where, msr_fields, ARRAY_SIZE(msr_fields), &m, e);

	if (ret < 0)
		return ret;
	if (c->nr_msr == CPU_CFG_MAX_MODIFIERS)
		return errf(e, EINVAL, "cpu-config: at most %d MSR modifiers",
		            CPU_CFG_MAX_MODIFIERS);
	c->msr[c->nr_msr++] =
	        (struct msr_modifier){.addr = m.addr, .mask = m.bits.mask, .value = m.bits.value};
	return 0;
}

static int parse_msr_modifiers(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return each_element(v, where, parse_msr, slot, e);
}

/* ------------------------------------------ machine-config's cpu_template */

/* Firecracker's StaticCpuTemplate for x86_64 */
static const char *const static_templates[] = {"C3", "T2", "T2S", "T2CL", "T2A", "None"};

int cfg_cpu_template_check(const char *name, const char *where, struct errbuf *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(static_templates); i++)
		if (strcmp(name, static_templates[i]) == 0)
			return 0;
	return errf(e, EINVAL,
	            "%s.cpu_template must be one of \"C3\", \"T2\", \"T2S\", \"T2CL\", "
	            "\"T2A\" or \"None\" (got \"%.64s\")",
	            where, name);
}

/* ------------------------------------------------------------- CpuConfig */

static int parse_kvm_caps(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	(void)slot;
	if (!json_is_array(v))
		return errf(e, EINVAL, "%s must be an array", where);
	if (json_array_size(v))
		return errf(e, EINVAL,
		            "%s: adding or removing KVM capabilities is not supported by kiln; "
		            "give an empty list",
		            where);
	return 0;
}

static const struct cfg_field cpu_fields[] = {
        {.name = "kvm_capabilities", .kind = CFG_CUSTOM, .parse = parse_kvm_caps},
        {.name = "cpuid_modifiers", .kind = CFG_CUSTOM, .parse = parse_cpuid_modifiers},
        {.name = "msr_modifiers", .kind = CFG_CUSTOM, .parse = parse_msr_modifiers},
        {.name = "reg_modifiers",
         .kind = CFG_REJECT,
         .reject = "reg_modifiers apply to aarch64 guests; kiln runs x86_64 guests"},
        {.name = "vcpu_features",
         .kind = CFG_REJECT,
         .reject = "vcpu_features apply to aarch64 guests; kiln runs x86_64 guests"},
};

/* a custom template object at `where` into *c (zeroed first, and again on error) */
static int cpu_config_at(json_t *body, const char *where, struct cpu_config *c, struct errbuf *e)
{
	memset(c, 0, sizeof(*c));
	int ret = cfg_fields_parse(body, where, cpu_fields, ARRAY_SIZE(cpu_fields), c, e);
	if (ret < 0)
		memset(c, 0, sizeof(*c));
	return ret;
}

/* PUT /cpu-config: the modifiers land in a->u.cpu_config (no strings to free) */
int api_parse_cpu_config(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cpu_config_at(body, "cpu-config", &a->u.cpu_config, e);
}

int cfg_cpu_config_doc(json_t *v, struct cpu_config *c, struct errbuf *e)
{
	char *text;
	size_t len;
	json_error_t jerr;

	memset(c, 0, sizeof(*c));
	if (!v || json_is_null(v))
		return 0;
	if (json_is_object(v))
		return cpu_config_at(v, "cpu-config", c, e) < 0 ? -EINVAL : 1;
	if (!json_is_string(v))
		return errf(e, EINVAL,
		            "cpu-config must be a custom CPU template (an object) or the "
		            "path of a file holding one");
	const char *path = json_string_value(v);
	int ret = read_file(path, CPU_CONFIG_FILE_MAX, &text, &len, e);
	if (ret < 0)
		return errf(e, -ret, "cpu-config: %s", e->msg);
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!doc)
		return errf(e, EINVAL, "cpu-config: %s is not JSON: %s at line %d column %d", path,
		            jerr.text, jerr.line, jerr.column);
	ret = json_is_object(doc) ? cpu_config_at(doc, path, c, e)
	                          : errf(e, EINVAL, "cpu-config: %s must hold a JSON object", path);
	json_decref(doc);
	return ret < 0 ? -EINVAL : 1;
}

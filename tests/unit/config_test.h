/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/unit/config_test: what test_config and test_config_json share: one
 * vm_config (cfg) and errbuf (err) per test, set up and freed by criterion,
 * parse() of a whole config document into them, and full_doc, a document
 * with every section.
 */
#ifndef KILN_TEST_CONFIG_TEST_H
#define KILN_TEST_CONFIG_TEST_H

#include "api/config.h"

/* a boot-source with only its kernel, to start documents with */
#define BS "\"boot-source\": {\"kernel_image_path\": \"/k\"}"

extern struct vm_config cfg;
extern struct errbuf err;
extern const char *const full_doc;

/* criterion .init / .fini */
void config_setup(void);
void config_teardown(void);
/* cfg_parse_document(doc) into cfg, errors in err */
int parse(const char *doc);

#endif

/*
 * check_main.c — the one runner for every `check` suite.
 * Each component's test file exports Suite *make_<component>_suite(void).
 */
#include <check.h>
#include <stdlib.h>

Suite *make_corpus_suite(void);
#ifndef TWINC_CORPUS_ONLY
Suite *make_gen_suite(void);
Suite *make_runtime_suite(void);
#endif

int main(void)
{
    SRunner *sr = srunner_create(make_corpus_suite());
#ifndef TWINC_CORPUS_ONLY
    srunner_add_suite(sr, make_gen_suite());
    srunner_add_suite(sr, make_runtime_suite());
#endif
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

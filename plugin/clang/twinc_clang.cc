/*
 * twinc_clang.cc — the Clang plugin: `clang -fplugin=twinc.so ...` writes the
 * twins of every `#pragma aad` function of the file it compiles.
 *
 *   -fplugin=PATH/twinc.so               load it (Clang 14, the version it was built for)
 *   -fplugin-arg-twinc-out=DIR           where bs.c's twins go: DIR/bs.twin.c, DIR/bs.twin.h
 *                                        (default: the object's folder; the current
 *                                        folder when the object is a temporary)
 *   -fplugin-arg-twinc-sync              run the generator after the compile instead of
 *                                        alongside it (same result; for timing and debugging)
 *
 * The plugin action runs after the main one (AddAfterMainAction), so it is
 * active in every compile that loads it.  Its CreateASTConsumer registers the
 * `#pragma aad` handler (so -Wunknown-pragmas stays quiet; under -E the action
 * never runs and the pragma is printed through) and collects the include
 * paths, defines and language standard of this compile from the
 * CompilerInstance.  If a line of the main file reads `#pragma aad`, it starts
 * the generator at once (twinc_plugin.c: in twinc-gen, a process of its own,
 * overlapping Clang's whole compile);
 * the pragma handler confirms it (a `#pragma aad` the preprocessor keeps, in
 * the main file) or starts it if that quick look missed.  HandleTranslationUnit,
 * after code generation, waits for the generator and reports each of its
 * diagnostics through Clang's DiagnosticsEngine at the SourceLocation of the
 * same file:line:col.  When Clang itself reported errors, the generator's are
 * dropped, and so is the work of an unconfirmed start.  Preprocessed input
 * (-save-temps) with `#pragma aad` is an error: its flags are gone, and stale
 * twins must never be linked.
 *
 * One plugin instance may see several translation units (the integrated cc1
 * runs `clang a.c b.c` in one process); all state lives in the per-unit
 * Twinc object.
 */
#include "clang/AST/ASTConsumer.h"
#include "clang/Basic/FileManager.h"
#include "clang/Basic/LangStandard.h"
#include "clang/Basic/SourceManager.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/FrontendPluginRegistry.h"
#include "clang/Lex/HeaderSearchOptions.h"
#include "clang/Lex/Pragma.h"
#include "clang/Lex/Preprocessor.h"
#include "clang/Lex/PreprocessorOptions.h"
#include "llvm/Support/Path.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "../twinc_plugin.h"

using namespace clang;

namespace {

/* What one translation unit needs: its compiler, the flags for the parse,
 * where the twins go, and the generator job once started. */
struct Twinc {
    CompilerInstance &ci;
    std::string input, out_dir;
    bool sync;
    TpArgs flags = {nullptr, 0, 0};
    bool seen = false;
    TpJob *job = nullptr;

    Twinc(CompilerInstance &ci, std::string out, bool sync) : ci(ci), out_dir(std::move(out)), sync(sync) {}
    ~Twinc()
    {
        tp_free(job);
        tp_args_free(&flags);
    }
    void start() { job = tp_start(input.c_str(), out_dir.c_str(), &flags, !sync); }
};

/* ---- the options Clang was given, as flags for the generator's parse ---- */

void add(TpArgs *a, const char *opt, const std::string &value) { tp_args_add2(a, opt, value.c_str()); }

void clang_flags(const CompilerInstance &ci, TpArgs *a)
{
    const HeaderSearchOptions &hs = ci.getHeaderSearchOpts();
    for (const HeaderSearchOptions::Entry &e : hs.UserEntries) {
        switch (e.Group) {
        case frontend::Quoted: add(a, "-iquote", e.Path); break;
        case frontend::Angled: add(a, e.IsFramework ? "-F" : "-I", e.Path); break;
        case frontend::System: add(a, e.IsFramework ? "-iframework" : "-isystem", e.Path); break;
        case frontend::After: add(a, "-idirafter", e.Path); break;
        default: break; /* the driver's C system folders: libclang finds them itself */
        }
    }
    if (!hs.Sysroot.empty() && hs.Sysroot != "/")
        add(a, "--sysroot=", hs.Sysroot);
    const PreprocessorOptions &pp = ci.getPreprocessorOpts();
    for (const auto &m : pp.Macros)
        add(a, m.second ? "-U" : "-D", m.first);
    for (const std::string &f : pp.MacroIncludes) {
        tp_args_add(a, "-imacros");
        tp_args_add(a, f.c_str());
    }
    for (const std::string &f : pp.Includes) {
        tp_args_add(a, "-include");
        tp_args_add(a, f.c_str());
    }
    const LangOptions &lo = ci.getLangOpts();
    add(a, "-std=", LangStandard::getLangStandardForKind(lo.LangStd).getName());
    if (lo.Optimize) /* __OPTIMIZE__ and friends */
        tp_args_add(a, lo.OptimizeSize ? "-Os" : "-O2");
    if (lo.FastMath)
        tp_args_add(a, "-ffast-math");
    if (!lo.CharIsSigned)
        tp_args_add(a, "-funsigned-char");
}

/* The object's folder, unless the object is the driver's temporary. */
std::string default_out_dir(const CompilerInstance &ci)
{
    const std::string &obj = ci.getFrontendOpts().OutputFile;
    if (obj.empty() || obj == "-" || obj == "/dev/null")
        return ".";
    char *dir = tp_dirname(obj.c_str());
    std::string d = dir;
    free(dir);
    llvm::SmallString<256> tmp;
    llvm::sys::path::system_temp_directory(true, tmp);
    if (tp_same_file(d.c_str(), tmp.c_str()))
        return ".";
    return d;
}

/* ---- #pragma aad ---- */

/* The clauses are the generator's business (it reports a bad one at its
 * column); here the line is skipped and the first one in the main file
 * starts the generator. */
class AadPragma : public PragmaHandler {
    std::shared_ptr<Twinc> tw;

public:
    explicit AadPragma(std::shared_ptr<Twinc> tw) : PragmaHandler("aad"), tw(std::move(tw)) {}
    void HandlePragma(Preprocessor &pp, PragmaIntroducer intro, Token &) override
    {
        pp.DiscardUntilEndOfDirective();
        if (tw->seen || !pp.getSourceManager().isWrittenInMainFile(intro.Loc))
            return;
        tw->seen = true;
        if (!tw->job && !tw->sync)
            tw->start();
    }
};

/* ---- diagnostics back at Clang locations ---- */

void report(CompilerInstance &ci, const TpDiag *d)
{
    DiagnosticsEngine &de = ci.getDiagnostics();
    DiagnosticsEngine::Level level = d->is_error ? DiagnosticsEngine::Error : DiagnosticsEngine::Note;
    SourceLocation loc;
    if (d->file) {
        if (auto fe = ci.getFileManager().getFile(d->file))
            loc = ci.getSourceManager().translateFileLineCol(*fe, (unsigned)d->line, (unsigned)d->col);
    }
    if (loc.isValid())
        de.Report(loc, de.getCustomDiagID(level, "%0")) << d->msg;
    else if (d->file)
        de.Report(de.getCustomDiagID(level, "%0:%1:%2: %3")) << d->file << d->line << d->col << d->msg;
    else
        de.Report(de.getCustomDiagID(level, "twinc: %0")) << d->msg;
}

class Consumer : public ASTConsumer {
    std::shared_ptr<Twinc> tw;

public:
    explicit Consumer(std::shared_ptr<Twinc> t) : tw(std::move(t)) {}
    void HandleTranslationUnit(ASTContext &) override
    {
        Twinc &t = *tw;
        bool clang_failed = t.ci.getDiagnostics().hasErrorOccurred();
        if (t.seen && !t.job && !clang_failed)
            t.start(); /* -fplugin-arg-twinc-sync */
        if (!t.job)
            return;
        tp_wait(t.job);
        if (t.seen && !clang_failed)
            for (int i = 0; i < tp_ndiags(t.job); i++)
                report(t.ci, tp_diag(t.job, i));
    }
};

class Action : public PluginASTAction {
    std::string out_dir;
    bool sync = false;

protected:
    bool ParseArgs(const CompilerInstance &ci, const std::vector<std::string> &args) override
    {
        DiagnosticsEngine &de = ci.getDiagnostics();
        for (const std::string &a : args) {
            if (a.rfind("out=", 0) == 0 && a.size() > 4)
                out_dir = a.substr(4);
            else if (a == "sync")
                sync = true;
            else {
                de.Report(de.getCustomDiagID(DiagnosticsEngine::Error,
                                             "twinc: unknown plugin argument '%0' (known: out=DIR, sync)"))
                    << a;
                return false;
            }
        }
        return true;
    }

    std::unique_ptr<ASTConsumer> CreateASTConsumer(CompilerInstance &ci, StringRef in) override
    {
        auto tw = std::make_shared<Twinc>(ci, out_dir.empty() ? default_out_dir(ci) : out_dir, sync);
        tw->input = in.str();
        if (ci.getLangOpts().CPlusPlus || ci.getLangOpts().ObjC)
            return std::make_unique<ASTConsumer>(); /* C only: no pragma, no twins */
        const auto &inputs = ci.getFrontendOpts().Inputs;
        if (!inputs.empty() && inputs[0].getKind().isPreprocessed()) {
            /* -save-temps: the flags are gone; never leave stale twins */
            if (tp_file_has_pragma(tw->input.c_str())) {
                DiagnosticsEngine &de = ci.getDiagnostics();
                de.Report(de.getCustomDiagID(DiagnosticsEngine::Error,
                                             "twinc: cannot write twins from preprocessed input; compile the "
                                             ".c file directly (no -save-temps) or use the twinc command"));
            }
            return std::make_unique<ASTConsumer>();
        }
        clang_flags(ci, &tw->flags);
        ci.getPreprocessor().AddPragmaHandler(new AadPragma(tw)); /* the preprocessor owns it */
        if (!tw->sync && tp_file_has_pragma(tw->input.c_str()))
            tw->start();
        return std::make_unique<Consumer>(tw);
    }

    ActionType getActionType() override { return AddAfterMainAction; }
};

} // namespace

static FrontendPluginRegistry::Add<Action> registration("twinc", "write the twins of #pragma aad functions");

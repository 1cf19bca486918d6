# twinc.cmake — twinc's CMake functions; twincConfig.cmake includes this file after
# setting TWINC_EXECUTABLE, TWINC_INCLUDE_DIR, TWINC_LIBRARY, TWINC_GCC_PLUGIN, ...
#
# twinc_add_kernels(<target> [CLI | PLUGIN] [OUTPUT_DIR <dir>] SOURCES <file.c> ...)
#
#   Compiles the twins of each file (FILE.twin.c, with FILE.twin.h, both in
#   OUTPUT_DIR, default ${CMAKE_CURRENT_BINARY_DIR}/twinc/<target>) into <target>.
#   OUTPUT_DIR goes on <target>'s include path (PUBLIC), so its sources and its
#   users can #include "FILE.twin.h"; the files themselves are added to <target>
#   when they are not among its sources yet.  Call it after the target has all
#   its sources: they are made to wait for the twin headers.
#
#   CLI     a custom command runs `twinc gen` with <target>'s include folders,
#           compile definitions and C standard.  A depfile written by the C
#           compiler (-MM) lists the headers the file includes, so editing one
#           regenerates the twins.  The files get -Wno-unknown-pragmas.  Any
#           generator, GCC or Clang.
#   PLUGIN  the files are compiled with the C compiler's twinc plugin (GCC 12 or
#           Clang 14), which writes the twins during that compile (the twins are
#           declared as its OBJECT_OUTPUTS); the compile's own dependency
#           tracking regenerates them.  Makefile and Ninja generators.
#   neither: the cache variable TWINC_MODE (CLI or PLUGIN, default CLI).
#
# twinc_enable_plugin(<target> [OUTPUT_DIR <dir>])
#
#   The plugin for every C source of <target> that has a `#pragma aad` line when
#   CMake configures (re-run CMake after annotating a new file).
#
# Both work with CMAKE_EXPORT_COMPILE_COMMANDS: the twins are ordinary sources
# of <target>, so they appear in compile_commands.json like the rest.

set(TWINC_MODE "CLI" CACHE STRING "How twinc_add_kernels generates twins: CLI or PLUGIN")
set_property(CACHE TWINC_MODE PROPERTY STRINGS CLI PLUGIN)

if(NOT TARGET twinc::twinc)
  add_executable(twinc::twinc IMPORTED)
  set_target_properties(twinc::twinc PROPERTIES IMPORTED_LOCATION "${TWINC_EXECUTABLE}")
endif()
if(NOT TARGET twinc::headers)
  add_library(twinc::headers INTERFACE IMPORTED)
  set_target_properties(twinc::headers PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${TWINC_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES m)
endif()
if(NOT TARGET twinc::runtime)
  add_library(twinc::runtime SHARED IMPORTED)
  set_target_properties(twinc::runtime PROPERTIES
    IMPORTED_LOCATION "${TWINC_LIBRARY}"
    INTERFACE_LINK_LIBRARIES "twinc::headers;${CMAKE_DL_LIBS}")
endif()

# The plugin for this project's C compiler, or a fatal error saying why not.
function(_twinc_plugin out)
  if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
    set(plugin "${TWINC_GCC_PLUGIN}")
    set(want "${TWINC_GCC_PLUGIN_VERSION}")
  elseif(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    set(plugin "${TWINC_CLANG_PLUGIN}")
    set(want "${TWINC_CLANG_PLUGIN_VERSION}")
  else()
    message(FATAL_ERROR "twinc: no plugin for the ${CMAKE_C_COMPILER_ID} C compiler; "
                        "use twinc_add_kernels(... CLI ...)")
  endif()
  string(REGEX MATCH "^[0-9]+" major "${CMAKE_C_COMPILER_VERSION}")
  if(NOT major STREQUAL want)
    message(FATAL_ERROR "twinc: the ${CMAKE_C_COMPILER_ID} plugin is built for version ${want}, "
                        "this compiler is ${CMAKE_C_COMPILER_VERSION}; use twinc_add_kernels(... CLI ...)")
  endif()
  if(NOT EXISTS "${plugin}")
    message(FATAL_ERROR "twinc: plugin '${plugin}' not found (build it: make plugins)")
  endif()
  set(${out} "${plugin}" PARENT_SCOPE)
endfunction()

# -D, -U, -I and -std words of a flags string such as CMAKE_C_FLAGS.
function(_twinc_parse_flags out flags)
  separate_arguments(words NATIVE_COMMAND "${flags}")
  set(keep)
  foreach(w IN LISTS words)
    if(w MATCHES "^-(D|U|I|std=)")
      list(APPEND keep "${w}")
    endif()
  endforeach()
  set(${out} "${keep}" PARENT_SCOPE)
endfunction()

function(twinc_add_kernels target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "CLI;PLUGIN" "OUTPUT_DIR" "SOURCES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "twinc_add_kernels: unexpected arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "twinc_add_kernels: '${target}' is not a target")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "twinc_add_kernels(${target}): no SOURCES")
  endif()
  string(TOUPPER "${TWINC_MODE}" mode)
  if(arg_CLI AND arg_PLUGIN)
    message(FATAL_ERROR "twinc_add_kernels(${target}): CLI or PLUGIN, not both")
  elseif(arg_CLI)
    set(mode CLI)
  elseif(arg_PLUGIN)
    set(mode PLUGIN)
  elseif(NOT mode MATCHES "^(CLI|PLUGIN)$")
    message(FATAL_ERROR "twinc: TWINC_MODE is '${TWINC_MODE}'; CLI or PLUGIN")
  endif()
  if(arg_OUTPUT_DIR)
    get_filename_component(out "${arg_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  else()
    set(out "${CMAKE_CURRENT_BINARY_DIR}/twinc/${target}")
  endif()
  file(MAKE_DIRECTORY "${out}")
  if(mode STREQUAL "PLUGIN")
    _twinc_plugin(plugin)
  endif()

  target_include_directories(${target} PUBLIC "${out}" "${TWINC_INCLUDE_DIR}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_LIBRARIES m)
  set_property(TARGET ${target} APPEND PROPERTY INTERFACE_LINK_LIBRARIES m)

  # the target's sources as absolute paths, to know which are new
  get_target_property(srcdir ${target} SOURCE_DIR)
  get_target_property(srcs ${target} SOURCES)
  set(have)
  foreach(s IN LISTS srcs)
    if(NOT s MATCHES "^\\$<")
      get_filename_component(s "${s}" ABSOLUTE BASE_DIR "${srcdir}")
      list(APPEND have "${s}")
    endif()
  endforeach()

  # what `twinc gen` parses with: the target's folders, definitions, C standard
  set(incs "$<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>")
  set(defs "$<TARGET_PROPERTY:${target},COMPILE_DEFINITIONS>")
  set(std "$<TARGET_PROPERTY:${target},C_STANDARD>")
  set(ext "$<TARGET_PROPERTY:${target},C_EXTENSIONS>")
  string(TOUPPER "${CMAKE_BUILD_TYPE}" cfg)
  _twinc_parse_flags(cflags "${CMAKE_C_FLAGS} ${CMAKE_C_FLAGS_${cfg}}")
  set(flags ${cflags}
      "$<$<BOOL:${incs}>:-I$<JOIN:${incs},$<SEMICOLON>-I>>"
      "$<$<BOOL:${defs}>:-D$<JOIN:${defs},$<SEMICOLON>-D>>"
      "$<$<BOOL:${std}>:-std=$<IF:$<STREQUAL:${ext},OFF>,c,gnu>${std}>")

  set(twins_c)
  set(twins_h)
  set(kernels)
  foreach(src IN LISTS arg_SOURCES)
    get_filename_component(abs "${src}" ABSOLUTE)
    get_filename_component(stem "${abs}" NAME_WLE)
    set(c "${out}/${stem}.twin.c")
    set(h "${out}/${stem}.twin.h")
    if(c IN_LIST twins_c)
      message(FATAL_ERROR "twinc_add_kernels(${target}): two sources named ${stem}.c; "
                          "their twins would share ${c}")
    endif()
    list(APPEND twins_c "${c}")
    list(APPEND twins_h "${h}")
    list(APPEND kernels "${abs}")
    if(NOT abs IN_LIST have)
      target_sources(${target} PRIVATE "${abs}")
    endif()
    if(mode STREQUAL "CLI")
      add_custom_command(
        OUTPUT "${c}" "${h}"
        COMMAND "${CMAKE_C_COMPILER}" -MM -MP -MT "${c}" -MF "${out}/${stem}.twin.d" ${flags} "${abs}"
        COMMAND twinc::twinc gen "${abs}" -o "${c}" --header "${h}" -- ${flags}
        DEPENDS "${abs}" "${TWINC_EXECUTABLE}"
        DEPFILE "${out}/${stem}.twin.d"
        COMMENT "twinc: twins of ${src}"
        COMMAND_EXPAND_LISTS VERBATIM)
      # without the plugin the compiler does not know the pragma
      set_property(SOURCE "${abs}" TARGET_DIRECTORY ${target} APPEND PROPERTY
                   COMPILE_OPTIONS -Wno-unknown-pragmas)
    else()
      set_property(SOURCE "${abs}" TARGET_DIRECTORY ${target} APPEND PROPERTY
                   COMPILE_OPTIONS "-fplugin=${plugin}" "-fplugin-arg-twinc-out=${out}")
      set_property(SOURCE "${abs}" TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_OUTPUTS "${c}" "${h}")
      # a new plugin or generator regenerates the twins
      get_filename_component(pdir "${plugin}/../.." ABSOLUTE)
      set_property(SOURCE "${abs}" TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_DEPENDS
                   "${plugin}" "${pdir}/twinc-gen")
      set_source_files_properties("${c}" "${h}" TARGET_DIRECTORY ${target} PROPERTIES GENERATED TRUE)
      # Ninja names the OBJECT_OUTPUTS relative to the build folder but the
      # twin source by its full path: tie the twin's compile to the header
      # output, so that it waits for (and is redone after) the plugin's compile
      set_property(SOURCE "${c}" TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_DEPENDS "${h}")
    endif()
    target_sources(${target} PRIVATE "${c}")
  endforeach()

  # the target's other C sources may include the twin headers
  foreach(s IN LISTS have)
    if(s MATCHES "\\.c$" AND NOT s IN_LIST kernels AND NOT s IN_LIST twins_c)
      set_property(SOURCE "${s}" TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_DEPENDS ${twins_h})
    endif()
  endforeach()
endfunction()

function(twinc_enable_plugin target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "OUTPUT_DIR" "")
  get_target_property(srcdir ${target} SOURCE_DIR)
  get_target_property(srcs ${target} SOURCES)
  set(kernels)
  foreach(s IN LISTS srcs)
    if(s MATCHES "\\.c$" AND NOT s MATCHES "\\.twin\\.c$" AND NOT s MATCHES "^\\$<")
      get_filename_component(abs "${s}" ABSOLUTE BASE_DIR "${srcdir}")
      if(EXISTS "${abs}")
        file(STRINGS "${abs}" hits REGEX "^[ \t]*#[ \t]*pragma[ \t]+aad([ \t(]|$)")
        if(hits)
          list(APPEND kernels "${abs}")
        endif()
      endif()
    endif()
  endforeach()
  if(NOT kernels)
    message(WARNING "twinc_enable_plugin(${target}): no source with '#pragma aad'")
    return()
  endif()
  if(arg_OUTPUT_DIR)
    twinc_add_kernels(${target} PLUGIN OUTPUT_DIR "${arg_OUTPUT_DIR}" SOURCES ${kernels})
  else()
    twinc_add_kernels(${target} PLUGIN SOURCES ${kernels})
  endif()
endfunction()

/* global module */
/**
 * The layering rule of docs/architecture.md ("Layers"), checked by dependency-cruiser in `npm run lint`:
 * a module may import only from its own layer or the layers below it, so the foundation knows nothing
 * of the domain, the domain nothing of servers, and nothing in src/ knows the commands. Each layer is a
 * list of top-level folders of src/ (a few composition roots that plug every domain module together are
 * named files, listed with the layer they really belong to).
 */
const layers = [
  ['foundation'],
  ['config', 'registry', 'http', 'supervisor'],
  ['inference', 'lint'],
  ['index'],
  ['policy', 'artifact'],
  ['fleet'],
  ['feedback'],
  ['rollout', 'site', 'verifier'],
  [
    'runtime',
    'generate',
    'bench',
    'doctor',
    'init',
    'quickstart',
    'observability',
    'fleet-status',
    'schemas',
  ],
  ['cli', 'ui'],
];
// Composition roots: files that assemble every domain's plug-ins (the linters `edgectl lint` runs).
const compositionRoots = ['src/lint/linters\\.ts'];
const folderRe = (names) => `^src/(${names.join('|')})(/|\\.ts$)`;
const forbidden = layers.flatMap((names, i) => {
  const above = layers.slice(i + 1).flat();
  if (above.length === 0) return [];
  return [
    {
      name: `layer-${i}-${names[0]}`,
      comment: `${names.join(', ')} may not import a higher layer (${above.join(', ')}): see docs/architecture.md "Layers"`,
      severity: 'error',
      from: { path: folderRe(names), pathNot: compositionRoots },
      to: { path: folderRe(above) },
    },
  ];
});
module.exports = {
  forbidden: [
    ...forbidden,
    {
      name: 'src-never-imports-commands',
      comment: 'commands/ are the top: src/ never imports them (docs/architecture.md "Layers")',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^commands/' },
    },
    {
      name: 'every-src-folder-has-a-layer',
      comment:
        'a new top-level folder of src/ must be given a layer in .dependency-cruiser.cjs and docs/architecture.md',
      severity: 'error',
      from: { path: '^src/', pathNot: folderRe(layers.flat()) },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};

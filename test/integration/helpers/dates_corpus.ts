// A small En→De corpus that is not the demo's (appointments with weekdays, dates and times), written in the layout of
// a real WMT release: several training corpora (europarl-v7 and commoncrawl aligned text, a news-commentary TSV) under
// training/, newstest2013 and newstest2014 as SGM under dev/ (newstest2014 with WMT's "deen" file names).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toSgm } from '../../../worker/data/wmt/demo_corpus.js';

const WEEKDAYS = [['Monday', 'Montag'], ['Tuesday', 'Dienstag'], ['Wednesday', 'Mittwoch'], ['Thursday', 'Donnerstag'], ['Friday', 'Freitag'], ['Saturday', 'Samstag'], ['Sunday', 'Sonntag']] as const;
const MONTHS = [['January', 'Januar'], ['February', 'Februar'], ['March', 'März'], ['April', 'April'], ['May', 'Mai'], ['June', 'Juni'], ['July', 'Juli'], ['August', 'August'], ['September', 'September'], ['October', 'Oktober'], ['November', 'November'], ['December', 'Dezember']] as const;
// [English, German, German article for "der/die/das … ist"]
const EVENTS = [
  ['meeting', 'Treffen', 'Das'], ['concert', 'Konzert', 'Das'], ['exam', 'Prüfung', 'Die'], ['party', 'Feier', 'Die'], ['trip', 'Ausflug', 'Der'],
  ['market', 'Markt', 'Der'], ['lecture', 'Vorlesung', 'Die'], ['wedding', 'Hochzeit', 'Die'], ['workshop', 'Arbeitstreffen', 'Das'],
  ['festival', 'Festival', 'Das'], ['interview', 'Vorstellungsgespräch', 'Das'], ['appointment', 'Termin', 'Der'], ['rehearsal', 'Probe', 'Die'],
  ['tournament', 'Turnier', 'Das'], ['exhibition', 'Ausstellung', 'Die'], ['conference', 'Konferenz', 'Die'], ['performance', 'Aufführung', 'Die'],
  ['inspection', 'Besichtigung', 'Die'], ['ceremony', 'Zeremonie', 'Die'], ['auction', 'Versteigerung', 'Die'],
] as const;
// Real corpora have many names: these give the subword vocabulary (1000 in configs/wmt-demo.yaml) enough to learn.
const CITIES = [
  ['Cologne', 'Köln'], ['Munich', 'München'], ['Vienna', 'Wien'], ['Zurich', 'Zürich'], ['Nuremberg', 'Nürnberg'], ['Hanover', 'Hannover'],
  ['Brunswick', 'Braunschweig'], ['Lucerne', 'Luzern'], ['Geneva', 'Genf'], ['Prague', 'Prag'], ['Warsaw', 'Warschau'], ['Copenhagen', 'Kopenhagen'],
  ['Brussels', 'Brüssel'], ['Venice', 'Venedig'], ['Florence', 'Florenz'], ['Lisbon', 'Lissabon'], ['Moscow', 'Moskau'], ['Athens', 'Athen'],
  ['Berlin', 'Berlin'], ['Hamburg', 'Hamburg'], ['Dresden', 'Dresden'], ['Leipzig', 'Leipzig'], ['Stuttgart', 'Stuttgart'], ['Freiburg', 'Freiburg'],
  ['Heidelberg', 'Heidelberg'], ['Salzburg', 'Salzburg'], ['Innsbruck', 'Innsbruck'], ['Graz', 'Graz'], ['Basel', 'Basel'], ['Bremen', 'Bremen'],
  ['Rostock', 'Rostock'], ['Kassel', 'Kassel'], ['Augsburg', 'Augsburg'], ['Regensburg', 'Regensburg'], ['Würzburg', 'Würzburg'], ['Mainz', 'Mainz'],
  ['Wiesbaden', 'Wiesbaden'], ['Karlsruhe', 'Karlsruhe'], ['Mannheim', 'Mannheim'], ['Potsdam', 'Potsdam'], ['Magdeburg', 'Magdeburg'], ['Erfurt', 'Erfurt'],
] as const;
const NAMES = [
  'Anna', 'Lukas', 'Sophie', 'Maximilian', 'Johanna', 'Friedrich', 'Katharina', 'Sebastian', 'Elisabeth', 'Konstantin', 'Charlotte', 'Theodor',
  'Margarete', 'Wilhelm', 'Franziska', 'Gottfried', 'Henriette', 'Bartholomäus', 'Mathilde', 'Leopold', 'Veronika', 'Ferdinand', 'Gertrude',
  'Ignaz', 'Walburga', 'Xaver', 'Zacharias', 'Ottilie', 'Quirin', 'Yvonne',
] as const;
const SURNAMES = (
  'Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer Richter Klein Wolf Schröder Neumann ' +
  'Schwarz Zimmermann Braun Krüger Hartmann Lange Werner Schmitz Krause Lehmann Schulze Köhler Herrmann König Walter Huber Kaiser Fuchs ' +
  'Peters Scholz Möller Weiß Jung Hahn Schubert Vogel Keller Günther Berger Winkler Roth Lorenz Baumann Franke Albrecht Schuster Ludwig ' +
  'Böhm Winter Kraus Schumacher Krämer Vogt Stein Jäger Sommer Seidel Heinrich Brandt Haas Schreiber Dietrich Ziegler Kuhn Pohl Engel ' +
  'Horn Busch Bergmann Voigt Sauer Arnold Pfeiffer Kretschmer Pflüger Obermaier Quast Eichhorn Rosenbaum Tiedemann Ueberschär Wedekind'
).split(' ');

/** Deterministic pseudo-random integers (a 32-bit LCG; the fixture needs variety, not quality). */
function lcg(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

/**
 * One pair: "Anna Weber's concert in Cologne is on Friday, May 3 at 8 o'clock." →
 * "Anna Webers Konzert in Köln ist am Freitag, dem 3. Mai um 8 Uhr." (without a name: "Das Konzert in Köln ist …").
 */
export function datePair(rand: (n: number) => number): { en: string; de: string } {
  const [wdEn, wdDe] = WEEKDAYS[rand(7)]!;
  const [moEn, moDe] = MONTHS[rand(12)]!;
  const [evEn, evDe, art] = EVENTS[rand(EVENTS.length)]!;
  const [ciEn, ciDe] = CITIES[rand(CITIES.length)]!;
  const name = rand(2) === 0 ? `${NAMES[rand(NAMES.length)]!} ${SURNAMES[rand(SURNAMES.length)]!}` : undefined;
  const day = 1 + rand(28);
  const hour = 1 + rand(12);
  const [subjEn, subjDe] = name ? [`${name}'s ${evEn}`, `${name}s ${evDe}`] : [`The ${evEn}`, `${art} ${evDe}`];
  return { en: `${subjEn} in ${ciEn} is on ${wdEn}, ${moEn} ${day} at ${hour} o'clock.`, de: `${subjDe} in ${ciDe} ist am ${wdDe}, dem ${day}. ${moDe} um ${hour} Uhr.` };
}

export interface DatesCorpus { root: string; train: number; valid: string; test: string; sentences: number }

/**
 * Writes `train` distinct training pairs split over europarl-v7.de-en.{en,de} (half), commoncrawl.de-en.{en,de} (a
 * quarter) and news-commentary-v14.de-en.tsv (de TAB en, a quarter), plus `dev` pairs each as newstest2013 (ende) and
 * newstest2014 (deen), none of them in training.
 */
export async function writeDatesCorpus(root: string, train = 600, dev = 20): Promise<DatesCorpus> {
  const rand = lcg(12);
  const seen = new Set<string>();
  const draw = (n: number) => {
    const out: { en: string; de: string }[] = [];
    while (out.length < n) {
      const p = datePair(rand);
      if (!seen.has(p.en)) {
        seen.add(p.en);
        out.push(p);
      }
    }
    return out;
  };
  const valid = draw(dev);
  const test = draw(dev);
  const pairs = draw(train);
  const half = Math.floor(train / 2);
  const quarter = Math.floor(train / 4);
  const [europarl, crawl, news] = [pairs.slice(0, half), pairs.slice(half, half + quarter), pairs.slice(half + quarter)];
  const lines = (xs: string[]) => xs.map((x) => `${x}\n`).join('');
  await mkdir(join(root, 'training'), { recursive: true });
  await mkdir(join(root, 'dev'), { recursive: true });
  const files: [string, string][] = [
    ['training/europarl-v7.de-en.en', lines(europarl.map((p) => p.en))],
    ['training/europarl-v7.de-en.de', lines(europarl.map((p) => p.de))],
    ['training/commoncrawl.de-en.en', lines(crawl.map((p) => p.en))],
    ['training/commoncrawl.de-en.de', lines(crawl.map((p) => p.de))],
    ['training/news-commentary-v14.de-en.tsv', lines(news.map((p) => `${p.de}\t${p.en}`))],
    ['dev/newstest2013-ende-src.en.sgm', toSgm('newstest2013', 'src', 'en', 'en', valid.map((p) => p.en))],
    ['dev/newstest2013-ende-ref.de.sgm', toSgm('newstest2013', 'ref', 'de', 'en', valid.map((p) => p.de))],
    ['dev/newstest2014-deen-src.en.sgm', toSgm('newstest2014', 'src', 'en', 'en', test.map((p) => p.en))],
    ['dev/newstest2014-deen-ref.de.sgm', toSgm('newstest2014', 'ref', 'de', 'en', test.map((p) => p.de))],
  ];
  for (const [rel, text] of files) await writeFile(join(root, rel), text, 'utf8');
  return { root, train, valid: 'newstest2013', test: 'newstest2014', sentences: dev };
}

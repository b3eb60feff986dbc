//! A map from a metric to its value held in a fixed array, one slot per metric: the recorder keeps
//! tens of thousands of per-GPU gauge and counter sets, and a tree per set made reading a day of
//! history allocation-bound. Serialised as a map keyed by the metric's history key, as a `BTreeMap`
//! was, so format-1 records read unchanged.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// A metric enum whose variants are numbered `0..ALL.len()` in declaration order.
pub trait MetricKey: Copy + Eq + 'static {
    /// Every metric, in slot order.
    const ALL: &'static [Self];
    /// The metric's slot.
    fn slot(self) -> usize;
}

/// Values for some of the metrics `K` (`N` is `K::ALL.len()`): a presence mask beside a dense
/// array, so a set is one small block with no per-slot tag.
#[derive(Clone, Copy, PartialEq)]
pub struct MetricMap<K, T, const N: usize> {
    present: u32,
    values: [T; N],
    key: PhantomData<K>,
}

impl<K, T: Default, const N: usize> Default for MetricMap<K, T, N> {
    fn default() -> Self {
        const { assert!(N <= 32, "the presence mask has 32 bits") };
        MetricMap {
            present: 0,
            values: std::array::from_fn(|_| T::default()),
            key: PhantomData,
        }
    }
}

impl<K: MetricKey, T, const N: usize> MetricMap<K, T, N> {
    /// The value of `k`, if present.
    pub fn get(&self, k: K) -> Option<&T> {
        self.contains_key(k).then(|| &self.values[k.slot()])
    }

    /// The value of `k`, made present (as it was at `default()`) when it was not.
    pub fn entry(&mut self, k: K) -> &mut T {
        self.present |= 1 << k.slot();
        &mut self.values[k.slot()]
    }

    /// Sets the value of `k`.
    pub fn insert(&mut self, k: K, v: T) {
        *self.entry(k) = v;
    }

    /// Whether `k` has a value.
    pub fn contains_key(&self, k: K) -> bool {
        self.present & (1 << k.slot()) != 0
    }

    /// Whether no metric has a value.
    pub fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// How many metrics have a value.
    pub fn len(&self) -> usize {
        self.present.count_ones() as usize
    }

    /// Present values with their metric, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &T)> + '_ {
        K::ALL
            .iter()
            .zip(&self.values)
            .enumerate()
            .filter(|(i, _)| self.present & (1 << i) != 0)
            .map(|(_, (k, v))| (*k, v))
    }
}

impl<K: MetricKey, T: Default, const N: usize> FromIterator<(K, T)> for MetricMap<K, T, N> {
    fn from_iter<I: IntoIterator<Item = (K, T)>>(iter: I) -> Self {
        let mut m = MetricMap::default();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<K: MetricKey, T: Default, const N: usize, const M: usize> From<[(K, T); M]>
    for MetricMap<K, T, N>
{
    fn from(pairs: [(K, T); M]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K: MetricKey + fmt::Debug, T: fmt::Debug, const N: usize> fmt::Debug for MetricMap<K, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: MetricKey + Serialize, T: Serialize, const N: usize> Serialize for MetricMap<K, T, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(&k, v)?;
        }
        map.end()
    }
}

impl<'de, K, T, const N: usize> Deserialize<'de> for MetricMap<K, T, N>
where
    K: MetricKey + Deserialize<'de>,
    T: Deserialize<'de> + Default,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, T, const N: usize>(PhantomData<(K, T)>);
        impl<'de, K, T, const N: usize> Visitor<'de> for MapVisitor<K, T, N>
        where
            K: MetricKey + Deserialize<'de>,
            T: Deserialize<'de> + Default,
        {
            type Value = MetricMap<K, T, N>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from metric keys to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut m = MetricMap::default();
                while let Some((k, v)) = a.next_entry::<K, T>()? {
                    m.insert(k, v);
                }
                Ok(m)
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}
